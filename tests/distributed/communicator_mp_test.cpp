// The MPI communicator's collectives between real processes: communicator_helper under `mpirun -np 2..4` checks
// allreduce, broadcast, all_gather, reduce_scatter and any against values derived from rank and size; and the
// one-rank communicator's gather and scatter are copies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "distributed/communicator.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

TEST(MpiCommunicator, CollectivesAgreeWithRankArithmetic) {
  for (int n : {2, 3, 4}) {
    const auto r =
        testing::run_process({TROUPE_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(n),
                              "--mca", "btl", "self,vader", testing::helper_path("communicator_helper")},
                             std::chrono::seconds(120));
    EXPECT_EQ(r.exit_code, 0) << "np " << n << ":\n" << r.output;
    for (int rank = 0; rank < n; ++rank)
      EXPECT_THAT(r.output, ::testing::HasSubstr("rank " + std::to_string(rank) + " of " + std::to_string(n) +
                                                 ": all collectives ok"));
  }
}

TEST(SingleProcessCommunicator, GatherAndScatterAreCopies) {
  distributed::SingleProcessCommunicator one;
  const torch::Tensor x = torch::arange(6, torch::kFloat32);
  torch::Tensor out = torch::empty({6});
  one.all_gather(x, out);
  EXPECT_TRUE(torch::equal(out, x));
  torch::Tensor scattered = torch::empty({6});
  one.reduce_scatter_sum(x, scattered);
  EXPECT_TRUE(torch::equal(scattered, x));
  torch::Tensor wrong = torch::empty({5});
  EXPECT_THROW(one.all_gather(x, wrong), ConfigError);
}

}  // namespace
}  // namespace troupe::distributed
