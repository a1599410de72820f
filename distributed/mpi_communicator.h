// distributed::Communicator over MPI (a communicator split from MPI_COMM_WORLD or the world itself). Collectives are
// non-blocking MPI calls polled until a deadline, so a peer that died or stopped answering raises TimeoutError
// instead of hanging. Initialises MPI (thread level FUNNELED) on first use and finalises it at exit.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>

#include "distributed/communicator.h"

namespace troupe::distributed {

// True when this process was started by an MPI launcher (mpirun / srun) with more than one rank.
bool launched_by_mpi();

// MPI_Init_thread once per process (idempotent); MPI_Finalize runs at exit.
void ensure_mpi_initialized();

class MpiCommunicator final : public distributed::Communicator {
 public:
  // The world communicator (duplicated, so Troupe's traffic never mixes with other users of the world).
  static std::unique_ptr<MpiCommunicator> world(std::chrono::milliseconds timeout = std::chrono::seconds(300));
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(at::Tensor& tensor) override;
  void broadcast(at::Tensor& tensor, int root) override;
  void all_gather(const at::Tensor& input, at::Tensor& output) override;
  void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) override;
  bool any(bool flag) override;
  void barrier() override;

 private:
  MpiCommunicator(MPI_Comm comm, std::chrono::milliseconds timeout);
  void wait(MPI_Request& request, const char* what);

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
};

}  // namespace troupe::distributed
