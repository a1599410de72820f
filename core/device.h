// The device a process computes on: `runtime.device` (auto | cpu | cuda | cuda:N) resolved against the GPUs this
// process can see and its local rank, and `runtime.deterministic`. Not a placement policy for roles (that is the
// PPO launch plan), and no CUDA headers: this compiles and runs the same in CPU-only and CUDA builds.
#pragma once

#include <torch/types.h>

#include <string>

#include "core/device_spec.h"

namespace troupe::core {

// The rank of this process among the processes of its job on this node: OMPI_COMM_WORLD_LOCAL_RANK (mpirun),
// SLURM_LOCALID (srun), LOCAL_RANK (torchrun-style launchers), else 0.
int local_rank();

// Resolves a device spec: auto -> cuda:(local_rank % visible GPUs) when a GPU is visible, else cpu; cuda ->
// cuda:(local_rank % visible GPUs); cuda:N -> that GPU. ConfigError naming `key` when a GPU is asked for and none
// is visible (a CPU-only build, or no GPU/driver), or when N is out of range.
torch::Device resolve_device(const std::string& spec, int local_rank, const std::string& key = "runtime.device");

// Deterministic algorithms on every device (at::Context: deterministic algorithms, deterministic and
// non-benchmarking cuDNN, CUBLAS_WORKSPACE_CONFIG for cuBLAS) or the defaults back. Call before the first
// CUDA operation: cuBLAS reads its workspace setting when it starts.
void set_deterministic(bool on);

}  // namespace troupe::core
