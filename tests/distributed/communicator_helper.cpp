// Started under `mpirun -np N` by communicator_mp_test: runs every collective of distributed::MpiCommunicator with
// values derived from rank and size, checks the results, and exits 0 only when all hold (a message names the first
// that does not). Not a test of the deadlines (the trainer's kill tests cover a dead rank).
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "distributed/mpi_communicator.h"

namespace {

int fail(int rank, const std::string& what) {
  std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  return 1;
}

}  // namespace

int main() {
  auto comm = troupe::distributed::MpiCommunicator::world(std::chrono::seconds(60));
  const int r = comm->rank(), n = comm->size();
  // allreduce: rank r holds [r, 10 r, 100 r] -> sum over ranks of r = n(n-1)/2, times 1, 10, 100.
  torch::Tensor t = torch::tensor({1.0, 10.0, 100.0}, torch::kFloat64) * r;
  comm->allreduce_sum(t);
  const double s = n * (n - 1) / 2.0;
  if (!torch::equal(t, torch::tensor({s, 10 * s, 100 * s}, torch::kFloat64))) return fail(r, "allreduce_sum");
  // broadcast from the last rank.
  torch::Tensor b = torch::full({4}, r, torch::kLong);
  comm->broadcast(b, n - 1);
  if (!torch::equal(b, torch::full({4}, n - 1, torch::kLong))) return fail(r, "broadcast");
  // all_gather: rank r contributes [r, r] -> [0, 0, 1, 1, ..., n-1, n-1].
  torch::Tensor mine = torch::full({2}, static_cast<float>(r));
  torch::Tensor all = torch::empty({2 * n});
  comm->all_gather(mine, all);
  if (!torch::equal(all, torch::arange(n, torch::kFloat32).repeat_interleave(2))) return fail(r, "all_gather");
  // reduce_scatter: every rank holds arange(2n) + rank; rank r gets slice r of the sum.
  torch::Tensor in = torch::arange(2 * n, torch::kFloat32) + r;
  torch::Tensor out = torch::empty({2});
  comm->reduce_scatter_sum(in, out);
  const torch::Tensor expected = torch::arange(2 * r, 2 * r + 2, torch::kFloat32) * n + static_cast<float>(s);
  if (!torch::equal(out, expected)) return fail(r, "reduce_scatter_sum");
  // any: only the last rank raises the flag.
  if (!comm->any(r == n - 1) || comm->any(false)) return fail(r, "any");
  comm->barrier();
  std::printf("rank %d of %d: all collectives ok\n", r, n);
  return 0;
}
