// distributed::Communicator over NCCL, for data-parallel groups whose ranks each drive one GPU. The NCCL unique id is
// made on rank 0 and broadcast over a bootstrap communicator (MPI); collectives run on CUDA tensors on a stream of the
// communicator's own, and the calling thread waits for them with a deadline: a dead or stuck peer aborts the NCCL
// communicator and raises TimeoutError naming this rank and the collective, never a hang. Not the MPI path for CPU
// tensors (distributed/mpi_communicator.h). Without TROUPE_WITH_CUDA, create() raises ConfigError.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "distributed/communicator.h"

namespace troupe::distributed {

// Whether this build has the NCCL path (TROUPE_WITH_CUDA).
bool nccl_compiled_in();

class NcclCommunicator final : public distributed::Communicator {
 public:
  // Collective over the ranks of `bootstrap`: every rank calls it with the GPU it drives. Raises ConfigError when
  // CUDA is not compiled in or no such GPU is visible, TimeoutError when a peer does not join within `timeout`.
  static std::unique_ptr<NcclCommunicator> create(distributed::Communicator& bootstrap, int device_index,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(300));
  // The same from a unique id that travelled some other way (e.g. in a message between processes of different
  // jobs): every one of `size` ranks calls it with the same id and its own rank; it returns when all have joined.
  static std::unique_ptr<NcclCommunicator> create(const std::string& unique_id, int rank, int size, int device_index,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(300));
  // A fresh NCCL unique id (its bytes; ConfigError without CUDA).
  static std::string new_unique_id();
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Tensors must be contiguous and on this communicator's GPU; float32/64, bfloat16, float16, int32/64, uint8.
  void allreduce_sum(at::Tensor& tensor) override;
  void broadcast(at::Tensor& tensor, int root) override;
  void all_gather(const at::Tensor& input, at::Tensor& output) override;
  void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) override;
  bool any(bool flag) override;
  void barrier() override;
  bool accepts(const c10::Device& device) const override;

  struct Impl;  // NCCL and CUDA handles (nccl_communicator.cpp)

 private:
  NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int size);
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
};

}  // namespace troupe::distributed
