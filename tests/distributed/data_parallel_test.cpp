// Tests for distributed/thread_communicator.h and distributed/data_parallel.h in one process: every collective of
// the in-memory group per rank count against its definition, deadlines and mismatched collectives, the row-sharding
// rule, and the gradient all-reduce and row gather that the trainer and the roles use.
#include "distributed/data_parallel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "core/errors.h"
#include "distributed/thread_communicator.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;

// Runs body(rank, comm) on one thread per rank of a fresh group; rethrows the first exception.
void on_group(int world, const std::function<void(int, distributed::Communicator&)>& body,
              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto comms = make_thread_group(world, timeout);
  testing::on_rank_threads(world, [&](int r) { body(r, *comms[static_cast<size_t>(r)]); });
}

TEST(ThreadCommunicator, EveryCollectiveMatchesItsDefinitionForOneToFourRanks) {
  for (int world = 1; world <= 4; ++world) {
    on_group(world, [world](int rank, distributed::Communicator& comm) {
      EXPECT_EQ(comm.rank(), rank);
      EXPECT_EQ(comm.size(), world);
      // allreduce: sum over r of (r + 1) * arange(5) = W (W + 1) / 2 * arange(5), several times in a row.
      for (int round = 0; round < 3; ++round) {
        torch::Tensor t = torch::arange(5, torch::kFloat64) * (rank + 1);
        comm.allreduce_sum(t);
        EXPECT_TRUE(torch::equal(t, torch::arange(5, torch::kFloat64) * (world * (world + 1) / 2)));
      }
      torch::Tensor b = torch::full({3}, rank == world - 1 ? 7.0 : -1.0);
      comm.broadcast(b, world - 1);
      EXPECT_TRUE(torch::equal(b, torch::full({3}, 7.0)));
      torch::Tensor gathered = torch::empty({2 * world}, torch::kLong);
      comm.all_gather(torch::tensor({rank, 10 * rank}, torch::kLong), gathered);
      for (int r = 0; r < world; ++r) {
        EXPECT_EQ(gathered[2 * r].item<int64_t>(), r);
        EXPECT_EQ(gathered[2 * r + 1].item<int64_t>(), 10 * r);
      }
      // reduce_scatter: every rank sends arange(2W) + rank; rank r keeps elements [2r, 2r + 2) of the sum.
      torch::Tensor mine = torch::empty({2}, torch::kFloat32);
      comm.reduce_scatter_sum(torch::arange(2 * world, torch::kFloat32) + rank, mine);
      const float offsets = world * (world - 1) / 2.0f;
      EXPECT_FLOAT_EQ(mine[0].item<float>(), world * (2.0f * rank) + offsets);
      EXPECT_FLOAT_EQ(mine[1].item<float>(), world * (2.0f * rank + 1) + offsets);
      EXPECT_EQ(comm.any(rank == 1), world > 1);
      EXPECT_FALSE(comm.any(false));
      comm.barrier();
      EXPECT_THROW(comm.all_gather(torch::ones({2}), gathered), ConfigError);  // wrong dtype: before any exchange
    });
  }
}

TEST(ThreadCommunicator, AMissingRankIsATimeoutNamingTheRankAndCollective) {
  auto comms = make_thread_group(2, std::chrono::milliseconds(200));
  torch::Tensor t = torch::ones({2});
  try {
    comms[0]->allreduce_sum(t);  // rank 1 never calls
    FAIL() << "expected a timeout";
  } catch (const TimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 0: allreduce_sum timed out after 200 ms"));
  }
  // The group is broken from then on: the late rank fails at once instead of waiting.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(comms[1]->allreduce_sum(t), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
}

TEST(ThreadCommunicator, RanksCallingDifferentCollectivesIsAProtocolError) {
  EXPECT_THROW(on_group(2,
                        [](int rank, distributed::Communicator& comm) {
                          torch::Tensor t = torch::ones({2});
                          if (rank == 0)
                            comm.allreduce_sum(t);
                          else
                            comm.broadcast(t, 0);
                        }),
               Error);
}

TEST(DataParallel, ShardRowsCoverTheBatchInBalancedContiguousBlocks) {
  for (int64_t n : {0, 1, 7, 8, 9, 100}) {
    for (int world = 1; world <= 5; ++world) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const RowRange rows = shard_rows(n, r, world);
        EXPECT_EQ(rows.begin, next) << n << " rows, rank " << r << " of " << world;
        EXPECT_TRUE(rows.size() == n / world || rows.size() == n / world + 1);
        EXPECT_EQ(rows.size(), n / world + (r < n % world ? 1 : 0));
        next = rows.end;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_THROW(shard_rows(4, 2, 2), ConfigError);
}

TEST(DataParallel, GradientsAndMetricSumsAreSummedAndRowsReassembled) {
  for (int world = 1; world <= 4; ++world) {
    on_group(world, [world](int rank, distributed::Communicator& comm) {
      // Two parameters; the second has no gradient on odd ranks (counts as zeros).
      torch::Tensor a = torch::zeros({2, 3}, torch::requires_grad()), b = torch::zeros({4}, torch::requires_grad());
      a.mutable_grad() = torch::full({2, 3}, static_cast<float>(rank + 1));
      if (rank % 2 == 0) b.mutable_grad() = torch::full({4}, 1.0f);
      std::vector<double> sums = {0.5 * rank, 1.0};
      allreduce_gradients(comm, {a, b}, &sums);
      EXPECT_TRUE(torch::allclose(a.grad(), torch::full({2, 3}, world * (world + 1) / 2.0f)));
      ASSERT_TRUE(b.grad().defined());
      EXPECT_TRUE(torch::allclose(b.grad(), torch::full({4}, static_cast<float>((world + 1) / 2))));
      EXPECT_NEAR(sums[0], 0.25 * world * (world - 1), 1e-6);
      EXPECT_NEAR(sums[1], world, 1e-6);
      // Rows: 7 rows of 3 columns, row i = i; each rank passes its share.
      const RowRange rows = shard_rows(7, comm);
      const torch::Tensor mine =
          torch::arange(rows.begin, rows.end, torch::kFloat32).unsqueeze(1).expand({rows.size(), 3}).contiguous();
      const torch::Tensor all = gather_rows(comm, mine, {7, 3});
      EXPECT_TRUE(torch::equal(all, torch::arange(7, torch::kFloat32).unsqueeze(1).expand({7, 3})));
      if (world > 1) {
        EXPECT_THROW(gather_rows(comm, torch::zeros({rows.size() + 1, 3}), {7, 3}), ConfigError);
      }
    });
  }
}

}  // namespace
}  // namespace troupe::distributed
