// Collectives inside a group of processes (a data-parallel role), as an interface so trainers in models/ and
// experiments/ do not depend on MPI. SingleProcessCommunicator is the one-rank group; the MPI implementation
// lives in distributed/mpi_communicator.h. Every collective of a multi-rank implementation has a deadline: a
// dead or stuck peer is a TimeoutError, never a hang.
#pragma once

#include <chrono>
#include <memory>

namespace at {
class Tensor;
}
namespace c10 {
struct Device;
}

namespace troupe::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place elementwise sum over all ranks of a contiguous float32/float64/int64 tensor (on the CPU for MPI, on the
  // rank's GPU for NCCL).
  virtual void allreduce_sum(at::Tensor& tensor) = 0;
  // In-place copy of `root`'s tensor to every rank (same shape and dtype everywhere).
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // output [size * n] = the ranks' `input` [n] in rank order (both contiguous, same dtype).
  virtual void all_gather(const at::Tensor& input, at::Tensor& output) = 0;
  // output [n] = this rank's slice of the elementwise sum of every rank's `input` [size * n].
  virtual void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) = 0;
  // Logical OR of a flag over all ranks (e.g. "a stop signal arrived somewhere").
  virtual bool any(bool flag) = 0;
  virtual void barrier() = 0;
  // Whether collectives take tensors on `device` directly (MPI: the CPU; NCCL: its GPU); callers route others
  // through host memory (distributed/data_parallel.h does).
  virtual bool accepts(const c10::Device& device) const;
};

// The shape rule of all_gather (part = input, whole = output) and reduce_scatter_sum (part = output, whole = input):
// `whole` holds `size` times the elements of `part`, of the same dtype. ConfigError naming `who` (e.g.
// "MPI all_gather") otherwise. One check for every implementation.
void check_gather_shapes(const char* who, const at::Tensor& part, const at::Tensor& whole, int size);

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(at::Tensor&) override {}
  void broadcast(at::Tensor&, int) override {}
  void all_gather(const at::Tensor& input, at::Tensor& output) override;
  void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) override;
  bool any(bool flag) override { return flag; }
  void barrier() override {}
};

}  // namespace troupe::distributed
