// Implementation of distributed/nccl_communicator.h. NCCL runs non-blocking (config.blocking = 0): every call and
// every collective's completion is polled against the deadline, and a miss aborts the communicator
// (ncclCommAbort), so no thread is left inside NCCL waiting for a dead peer.
#include "distributed/nccl_communicator.h"

#include <torch/torch.h>

#include <cstring>
#include <string>
#include <thread>

#include "core/errors.h"

#ifdef TROUPE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace troupe::distributed {

#ifndef TROUPE_WITH_CUDA

bool nccl_compiled_in() { return false; }

struct NcclCommunicator::Impl {};

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(distributed::Communicator&, int, std::chrono::milliseconds) {
  throw ConfigError("NCCL: this Troupe was built without CUDA (TROUPE_WITH_CUDA=OFF)");
}
std::unique_ptr<NcclCommunicator> NcclCommunicator::create(const std::string&, int, int, int,
                                                           std::chrono::milliseconds) {
  throw ConfigError("NCCL: this Troupe was built without CUDA (TROUPE_WITH_CUDA=OFF)");
}
std::string NcclCommunicator::new_unique_id() {
  throw ConfigError("NCCL: this Troupe was built without CUDA (TROUPE_WITH_CUDA=OFF)");
}
NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int size)
    : impl_(std::move(impl)), rank_(rank), size_(size) {}
NcclCommunicator::~NcclCommunicator() = default;
void NcclCommunicator::allreduce_sum(at::Tensor&) {}
void NcclCommunicator::broadcast(at::Tensor&, int) {}
void NcclCommunicator::all_gather(const at::Tensor&, at::Tensor&) {}
void NcclCommunicator::reduce_scatter_sum(const at::Tensor&, at::Tensor&) {}
bool NcclCommunicator::any(bool flag) { return flag; }
void NcclCommunicator::barrier() {}
bool NcclCommunicator::accepts(const c10::Device&) const { return false; }

#else

bool nccl_compiled_in() { return true; }

namespace {

using Clock = std::chrono::steady_clock;

void check_cuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    default: throw ConfigError(std::string("NCCL collective: unsupported dtype ") + c10::toString(t.scalar_type()));
  }
}

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  int device = 0, rank = 0;
  std::chrono::milliseconds timeout{0};
  bool aborted = false;

  [[noreturn]] void fail(const std::string& what, const std::string& why, bool timed_out) {
    if (!aborted && comm != nullptr) {
      ncclCommAbort(comm);  // frees every rank of ours still inside NCCL; the communicator is unusable after
      aborted = true;
    }
    const std::string msg =
        "NCCL " + what + " on rank " + std::to_string(rank) + " (cuda:" + std::to_string(device) + "): " + why;
    if (timed_out) throw TimeoutError(msg);
    throw Error(msg);
  }

  // Polls until NCCL has no operation in progress on `comm` (a non-blocking call returned), or the deadline.
  void settle(ncclResult_t rc, const std::string& what, Clock::time_point deadline) {
    while (rc == ncclInProgress) {
      if (Clock::now() > deadline) fail(what, "not done within " + std::to_string(timeout.count()) + " ms", true);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      ncclCommGetAsyncError(comm, &rc);
    }
    if (rc != ncclSuccess) fail(what, ncclGetErrorString(rc), false);
  }

  // ConfigError unless `tensor` is contiguous on this communicator's GPU.
  void check(const at::Tensor& tensor, const std::string& what) const {
    if (!tensor.is_cuda() || tensor.get_device() != device || !tensor.is_contiguous())
      throw ConfigError("NCCL " + what + ": tensors must be contiguous on cuda:" + std::to_string(device));
  }

  // Runs `launch` on our stream after the caller's current stream, then waits for it with the deadline.
  template <class Launch>
  void run(const std::string& what, const at::Tensor& tensor, Launch&& launch) {
    if (aborted) fail(what, "the communicator was aborted by an earlier error", false);
    check(tensor, what);
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    const auto deadline = Clock::now() + timeout;
    check_cuda(cudaEventRecord(done, c10::cuda::getCurrentCUDAStream(device).stream()), "event record");
    check_cuda(cudaStreamWaitEvent(stream, done, 0), "stream wait");  // inputs written by the caller's stream
    settle(launch(), what, deadline);
    check_cuda(cudaEventRecord(done, stream), "event record");
    for (;;) {
      const cudaError_t q = cudaEventQuery(done);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) fail(what, cudaGetErrorString(q), false);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) fail(what, ncclGetErrorString(async), false);
      if (Clock::now() > deadline)
        fail(what,
             "no answer from all ranks within " + std::to_string(timeout.count()) + " ms (a peer died or is stuck)",
             true);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
};

std::string NcclCommunicator::new_unique_id() {
  ncclUniqueId id{};
  const ncclResult_t rc = ncclGetUniqueId(&id);
  if (rc != ncclSuccess) throw Error(std::string("NCCL ncclGetUniqueId: ") + ncclGetErrorString(rc));
  return std::string(reinterpret_cast<const char*>(&id), sizeof(id));
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(distributed::Communicator& bootstrap, int device_index,
                                                           std::chrono::milliseconds timeout) {
  // The unique id travels as 128 bytes over the bootstrap group (MPI, CPU tensors).
  std::string id(sizeof(ncclUniqueId), '\0');
  if (bootstrap.rank() == 0) id = new_unique_id();
  at::Tensor bytes = torch::from_blob(id.data(), {static_cast<int64_t>(id.size())}, torch::kUInt8).clone();
  bootstrap.broadcast(bytes, 0);
  std::memcpy(id.data(), bytes.data_ptr(), id.size());
  return create(id, bootstrap.rank(), bootstrap.size(), device_index, timeout);
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(const std::string& unique_id, int rank, int size,
                                                           int device_index, std::chrono::milliseconds timeout) {
  if (unique_id.size() != sizeof(ncclUniqueId))
    throw ConfigError("NCCL: a unique id has " + std::to_string(sizeof(ncclUniqueId)) + " bytes, got " +
                      std::to_string(unique_id.size()));
  if (rank < 0 || rank >= size)
    throw ConfigError("NCCL: rank " + std::to_string(rank) + " outside a group of " + std::to_string(size));
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) visible = 0;
  if (device_index < 0 || device_index >= visible)
    throw ConfigError("NCCL: rank " + std::to_string(rank) + " asked for cuda:" + std::to_string(device_index) +
                      " but sees " + std::to_string(visible) + " GPU(s)");
  ncclUniqueId id{};
  std::memcpy(&id, unique_id.data(), sizeof(id));
  auto impl = std::make_unique<Impl>();
  impl->device = device_index;
  impl->rank = rank;
  impl->timeout = timeout;
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
  check_cuda(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), "stream create");
  check_cuda(cudaEventCreateWithFlags(&impl->done, cudaEventDisableTiming), "event create");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const auto deadline = Clock::now() + timeout;
  ncclResult_t rc = ncclCommInitRankConfig(&impl->comm, size, id, rank, &config);
  if (rc != ncclSuccess && rc != ncclInProgress) throw Error(std::string("NCCL init: ") + ncclGetErrorString(rc));
  impl->settle(rc, "init", deadline);
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(impl), rank, size));
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int size)
    : impl_(std::move(impl)), rank_(rank), size_(size) {}

NcclCommunicator::~NcclCommunicator() {
  if (!impl_) return;
  if (impl_->comm != nullptr && !impl_->aborted) ncclCommDestroy(impl_->comm);
  if (impl_->done != nullptr) cudaEventDestroy(impl_->done);
  if (impl_->stream != nullptr) cudaStreamDestroy(impl_->stream);
}

void NcclCommunicator::allreduce_sum(at::Tensor& t) {
  impl_->run("allreduce", t, [&] {
    return ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), ncclSum, impl_->comm, impl_->stream);
  });
}

void NcclCommunicator::broadcast(at::Tensor& t, int root) {
  impl_->run("broadcast", t, [&] {
    return ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), root, impl_->comm, impl_->stream);
  });
}

void NcclCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  distributed::check_gather_shapes("NCCL all_gather", input, output, size_);
  impl_->check(input, "all_gather");
  impl_->run("all_gather", output, [&] {
    return ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input), impl_->comm,
                         impl_->stream);
  });
}

void NcclCommunicator::reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) {
  distributed::check_gather_shapes("NCCL reduce_scatter_sum", output, input, size_);
  impl_->check(input, "reduce_scatter");
  impl_->run("reduce_scatter", output, [&] {
    return ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(), nccl_type(output), ncclSum,
                             impl_->comm, impl_->stream);
  });
}

bool NcclCommunicator::accepts(const c10::Device& device) const {
  return device.is_cuda() && device.index() == impl_->device;
}

bool NcclCommunicator::any(bool flag) {
  at::Tensor t =
      torch::full({1}, flag ? 1 : 0, torch::TensorOptions().dtype(torch::kInt32).device(torch::kCUDA, impl_->device));
  allreduce_sum(t);
  return t.item<int>() != 0;
}

void NcclCommunicator::barrier() {
  at::Tensor t = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt32).device(torch::kCUDA, impl_->device));
  allreduce_sum(t);
}

#endif  // TROUPE_WITH_CUDA

}  // namespace troupe::distributed
