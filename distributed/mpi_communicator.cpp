// Implementation of distributed/mpi_communicator.h.
#include "distributed/mpi_communicator.h"

#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "core/errors.h"
#include "distributed/checked_call.h"

namespace troupe::distributed {

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(var); v != nullptr && std::atoi(v) > 1) return true;
  }
  return false;
}

namespace {

// Tests `request` until it completes; TimeoutError after `timeout` (a peer of the `size` ranks died or is stuck).
// Spins first, then sleeps 50 us between tests.
void wait_for_request(MPI_Request& request, const char* what, std::chrono::milliseconds timeout, int size) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int done = 0;
  for (int spins = 0;; ++spins) {
    TROUPE_MPI(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw TimeoutError(std::string("MPI ") + what + ": no answer from all " + std::to_string(size) +
                         " ranks within " + std::to_string(timeout.count()) + " ms (a peer died or is stuck)");
    }
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

void ensure_mpi_initialized() {
  int initialized = 0;
  TROUPE_MPI(MPI_Initialized(&initialized));
  if (initialized) return;
  int provided = 0;
  TROUPE_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(std::chrono::milliseconds timeout) {
  ensure_mpi_initialized();
  // MPI_Comm_dup is a collective that waits for every rank: the non-blocking form, tested against the deadline like
  // every other collective here, turns a rank that never arrives into a TimeoutError instead of a hang.
  int world_size = 1;
  TROUPE_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
  MPI_Comm comm;
  MPI_Request request;
  TROUPE_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &comm, &request));
  wait_for_request(request, "communicator set-up (MPI_Comm_idup)", timeout, world_size);
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(comm, timeout));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::chrono::milliseconds timeout) : comm_(comm), timeout_(timeout) {
  TROUPE_MPI(MPI_Comm_rank(comm_, &rank_));
  TROUPE_MPI(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::wait(MPI_Request& request, const char* what) { wait_for_request(request, what, timeout_, size_); }

namespace {
MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default: throw ConfigError(std::string("MPI collective: unsupported dtype ") + c10::toString(t.scalar_type()));
  }
}
void check_tensor(const torch::Tensor& t) {
  if (!t.is_contiguous() || !t.device().is_cpu())
    throw ConfigError("MPI collective: tensor must be contiguous on the CPU");
}
}  // namespace

void MpiCommunicator::allreduce_sum(at::Tensor& tensor) {
  check_tensor(tensor);
  if (size_ == 1) return;
  MPI_Request request;
  TROUPE_MPI(MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()), mpi_type(tensor),
                            MPI_SUM, comm_, &request));
  wait(request, "allreduce");
}

void MpiCommunicator::broadcast(at::Tensor& tensor, int root) {
  check_tensor(tensor);
  if (size_ == 1) return;
  MPI_Request request;
  TROUPE_MPI(MPI_Ibcast(tensor.data_ptr(), static_cast<int>(tensor.numel()), mpi_type(tensor), root, comm_, &request));
  wait(request, "broadcast");
}

void MpiCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  check_tensor(input);
  check_tensor(output);
  distributed::check_gather_shapes("MPI all_gather", input, output, size_);
  MPI_Request request;
  TROUPE_MPI(MPI_Iallgather(input.data_ptr(), static_cast<int>(input.numel()), mpi_type(input), output.data_ptr(),
                            static_cast<int>(input.numel()), mpi_type(output), comm_, &request));
  wait(request, "all_gather");
}

void MpiCommunicator::reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) {
  check_tensor(input);
  check_tensor(output);
  distributed::check_gather_shapes("MPI reduce_scatter_sum", output, input, size_);
  MPI_Request request;
  TROUPE_MPI(MPI_Ireduce_scatter_block(input.data_ptr(), output.data_ptr(), static_cast<int>(output.numel()),
                                       mpi_type(output), MPI_SUM, comm_, &request));
  wait(request, "reduce_scatter");
}

bool MpiCommunicator::any(bool flag) {
  if (size_ == 1) return flag;
  int value = flag ? 1 : 0;
  MPI_Request request;
  TROUPE_MPI(MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_LOR, comm_, &request));
  wait(request, "any");
  return value != 0;
}

void MpiCommunicator::barrier() {
  if (size_ == 1) return;
  MPI_Request request;
  TROUPE_MPI(MPI_Ibarrier(comm_, &request));
  wait(request, "barrier");
}

}  // namespace troupe::distributed
