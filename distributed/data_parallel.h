// Data parallelism's three pieces, one rule each, for every user (the trainer, the PPO roles): which rows a rank
// takes, how gradients (and the metric sums logged with them) are summed over the group, and how per-row results are
// reassembled. N ranks then compute what one would, up to float summation order. Works with any
// distributed::Communicator: tensors on a device the communicator does not take (GPU tensors over MPI) go through host
// memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "distributed/communicator.h"

namespace torch::optim {
class Optimizer;
}

namespace troupe::distributed {

// Rows [begin, end) of a batch of n.
struct RowRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// The rows `rank` of `world` takes of n: contiguous blocks in rank order, the first n % world ranks one row more
// (so every rank knows every other's rows, and a gather needs no sizes on the wire).
RowRange shard_rows(int64_t n, int rank, int world);
inline RowRange shard_rows(int64_t n, const distributed::Communicator& comm) {
  return shard_rows(n, comm.rank(), comm.size());
}

// Sums `tensor` over the group in place, through host memory when the communicator does not take its device.
void allreduce_sum_anywhere(distributed::Communicator& comm, at::Tensor& tensor);

// Sums the gradients of `params` over the group in one flat collective (a parameter without a gradient counts as
// zeros and gets one), together with `sums` (metric sums logged with the step; may be null). One rank: nothing.
void allreduce_gradients(distributed::Communicator& comm, const std::vector<at::Tensor>& params,
                         std::vector<double>* sums = nullptr);

// One data-parallel optimizer step, the same on every rank of `comm`: sum the gradients of `params` over the group
// (allreduce_gradients), clip their global norm to `max_norm` (infinity: no clipping), step. Returns the norm
// before clipping (equal on every rank). Each rank's loss must already be divided by the global normaliser (e.g.
// the group's token count), so that the summed gradient is the gradient of the global loss.
double optimizer_step(distributed::Communicator& comm, const std::vector<at::Tensor>& params,
                      torch::optim::Optimizer& optimizer, double max_norm = std::numeric_limits<double>::infinity());

// [shape...] float32 on the CPU from every rank's rows: rank r passes its rows shard_rows(shape[0], r, W) as `mine`
// (undefined or empty when it has none). Zero-padded blocks summed in one all-reduce. One rank: `mine` as it is.
at::Tensor gather_rows(distributed::Communicator& comm, const at::Tensor& mine, const std::vector<int64_t>& shape);

}  // namespace troupe::distributed
