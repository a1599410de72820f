// Implementation of distributed/data_parallel.h.
#include "distributed/data_parallel.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/errors.h"

namespace troupe::distributed {

RowRange shard_rows(int64_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world || n < 0)
    throw ConfigError("shard_rows: rank " + std::to_string(rank) + " of " + std::to_string(world) + ", " +
                      std::to_string(n) + " rows");
  const int64_t base = n / world, extra = n % world, r = rank;
  const int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

void allreduce_sum_anywhere(distributed::Communicator& comm, at::Tensor& tensor) {
  if (comm.accepts(tensor.device())) {
    comm.allreduce_sum(tensor);
    return;
  }
  at::Tensor host = tensor.cpu();
  comm.allreduce_sum(host);
  tensor.copy_(host);
}

void allreduce_gradients(distributed::Communicator& comm, const std::vector<at::Tensor>& params,
                         std::vector<double>* sums) {
  if (comm.size() == 1 || params.empty()) return;
  std::vector<at::Tensor> parts;
  for (const auto& p : params) {
    at::Tensor param = p;  // a handle: mutable_grad() sets the gradient of the shared parameter
    if (!param.grad().defined()) param.mutable_grad() = torch::zeros_like(param);
    parts.push_back(param.grad().reshape({-1}).to(torch::kFloat32));
  }
  if (sums != nullptr && !sums->empty())
    parts.push_back(torch::tensor(*sums, torch::kFloat64).to(parts[0].device(), torch::kFloat32));
  at::Tensor flat = torch::cat(parts);
  allreduce_sum_anywhere(comm, flat);
  int64_t at = 0;
  for (const auto& p : params) {
    at::Tensor param = p;
    param.mutable_grad().copy_(flat.slice(0, at, at + param.numel()).view_as(param));
    at += param.numel();
  }
  if (sums != nullptr && !sums->empty()) {
    const at::Tensor reduced = flat.slice(0, at).to(torch::kCPU, torch::kFloat64).contiguous();
    std::copy(reduced.data_ptr<double>(), reduced.data_ptr<double>() + reduced.numel(), sums->begin());
  }
}

at::Tensor gather_rows(distributed::Communicator& comm, const at::Tensor& mine, const std::vector<int64_t>& shape) {
  if (comm.size() == 1) return mine;
  at::Tensor full = torch::zeros(shape, torch::kFloat32);
  const RowRange rows = shard_rows(shape.at(0), comm);
  if (mine.defined() && mine.size(0) > 0) {
    if (mine.size(0) != rows.size())
      throw ConfigError("gather_rows: rank " + std::to_string(comm.rank()) + " holds " + std::to_string(mine.size(0)) +
                        " rows, its share is " + std::to_string(rows.size()));
    full.slice(0, rows.begin, rows.end).copy_(mine);
  }
  comm.allreduce_sum(full);
  return full;
}

double optimizer_step(distributed::Communicator& comm, const std::vector<at::Tensor>& params,
                      torch::optim::Optimizer& optimizer, double max_norm) {
  allreduce_gradients(comm, params);
  const double norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
  optimizer.step();
  return norm;
}

}  // namespace troupe::distributed
