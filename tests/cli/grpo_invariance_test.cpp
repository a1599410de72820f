// The invariance suite (ctest label `invariance`): runs that must not change when only their batching does.
// GRPO on the target-pattern task with runtime.deterministic: true (every row its own forward and backward pass,
// the sampler's log-probs from the trainer's path):
//  - micro-batches of 1, 4 and the whole minibatch log bitwise-identical metrics and end with bitwise-identical
//    weights;
//  - the train-inference gap (rollout/logprob_diff_max) is exactly 0 at every iteration, and the first minibatch's
//    ratio exactly 1 (the actor refuses any deviation in this mode);
//  - the same run with its roles as worker processes is bitwise identical to the one-process run;
//  - asynchronous rollouts with max_staleness 0 are bitwise the synchronous run;
//  - PPO with its critic: micro-batches of 2 and the whole minibatch are bitwise identical;
//  - sequence packing on vs off matches within 1e-5 over the first iterations;
//  - the actor as a data-parallel group of 2 MPI ranks matches 1 rank within 1e-5 over the first iterations (the
//    all-reduce adds the two ranks' gradients in another order).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/checkpoint_state.h"
#include "core/run_log.h"
#include "models/gpt_checkpoint.h"
#include "tests/support/pattern_task.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

class GrpoInvariance : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::PatternTask task;
    task.runtime = "{threads: 1, deterministic: true}";
    task.checkpoint = "{every: 0, keep_last: 1}";
    task.generation = "{max_new_tokens: 4, do_sample: true, stop_tokens: [7]}";
    task.ppo =
        "{iterations: 12, rollout_batch: 8, group_size: 4, minibatch: 16, epochs: 2,\n"
        "      advantage_estimator: grpo, kl_mode: loss, kl_estimator: k3, kl: {init_coef: 0.01}}";
    write_file(dir_ / "grpo.yaml", testing::pattern_task_yaml(dir_ / "runs", task));
  }
  std::filesystem::path run(const std::string& name, std::vector<std::string> extra = {}) {
    const auto r = run_process(testing::run_args(dir_ / "grpo.yaml", name, extra), std::chrono::seconds(300));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir_ / "runs" / name;
  }
  static void expect_identical(const std::filesystem::path& a, const std::filesystem::path& b) {
    core::RunLogReader la(a / "log.h5"), lb(b / "log.h5");
    int compared = 0;
    for (const std::string& m : la.metric_names()) {
      if (m.rfind("time/", 0) == 0) continue;   // wall-clock times differ
      if (m.rfind("async/", 0) == 0) continue;  // only the asynchronous run has these
      EXPECT_EQ(la.metric(m).values, lb.metric(m).values) << m;
      ++compared;
    }
    EXPECT_GT(compared, 15);
    // The final weights, tensor by tensor (the files are torch archives with a random serialization id).
    const core::CheckpointState ca = models::load_checkpoint_at(a), cb = models::load_checkpoint_at(b);
    const auto& ta = ca.tensor_groups.at("model");
    const auto& tb = cb.tensor_groups.at("model");
    ASSERT_EQ(ta.size(), tb.size());
    for (const auto& [name, t] : ta) EXPECT_TRUE(torch::equal(t, tb.at(name))) << name << " differs";
  }
  ScratchDir dir_;
};

TEST_F(GrpoInvariance, MicroBatchSizeChangesNoBitAndTheTrainInferenceGapIsZero) {
  const auto whole = run("whole");
  expect_identical(whole, run("micro1", {"ppo.micro_batch=1"}));
  expect_identical(whole, run("micro4", {"ppo.micro_batch=4"}));
  core::RunLogReader log(whole / "log.h5");
  const auto gap = log.metric("rollout/logprob_diff_max");
  ASSERT_EQ(gap.values.size(), 12u);
  for (double g : gap.values) EXPECT_EQ(g, 0.0);
  // It learns while being exact.
  const auto reward = log.metric("reward/raw_mean");
  EXPECT_GT(reward.values.back(), reward.values.front() + 0.2);
  // Without the deterministic mode the gap is measured too (KV-cache sampling against a full forward pass).
  core::RunLogReader fast(run("fast", {"runtime.deterministic=false"}) / "log.h5");
  for (double g : fast.metric("rollout/logprob_diff_max").values) EXPECT_LT(g, 1e-4);
}

// Sampling on the rollout worker with max_staleness 0 (weights pushed before every generation, nothing overlaps)
// is the synchronous run, bit for bit: same samples, importance weights exactly 1.
TEST_F(GrpoInvariance, AsynchronousWithStalenessZeroIsTheSynchronousRun) {
  const auto async = run("async0", {"ppo.async.enabled=true", "ppo.async.max_staleness=0"});
  expect_identical(run("sync"), async);
  core::RunLogReader log(async / "log.h5");
  for (double s : log.metric("async/staleness").values) EXPECT_EQ(s, 0.0);
  for (double w : log.metric("async/is_weight_max").values) EXPECT_EQ(w, 1.0);

  // With DAPO's dynamic sampling too: the extra rounds come from the rollout worker with the synchronous run's
  // prompts and seeds, so the runs stay identical; and with max_staleness 1 the combined run works and learns.
  const std::vector<std::string> dynamic = {"ppo.dynamic_sampling.enabled=true", "ppo.dynamic_sampling.max_rounds=4"};
  const auto sync_dynamic = run("sync_dynamic", dynamic);
  std::vector<std::string> async_dynamic = dynamic;
  async_dynamic.insert(async_dynamic.end(), {"ppo.async.enabled=true", "ppo.async.max_staleness=0"});
  expect_identical(sync_dynamic, run("async0_dynamic", async_dynamic));
  core::RunLogReader rounds(sync_dynamic / "log.h5");
  const auto r = rounds.metric("sampling/rounds").values;
  EXPECT_GT(*std::max_element(r.begin(), r.end()), 1.0) << "no iteration needed a second round: nothing was tested";
  async_dynamic.back() = "ppo.async.max_staleness=1";
  core::RunLogReader stale(run("async1_dynamic", async_dynamic) / "log.h5");
  for (double s : stale.metric("async/staleness").values) EXPECT_LE(s, 1.0);
  const auto reward = stale.metric("reward/raw_mean").values;
  EXPECT_GT(reward.back(), reward.front());
}

// The weight push as a collective broadcast from the actor to the rollout worker (a thread group here; NCCL between
// GPU worker processes) delivers the same weights as the push through the controller: the runs are identical.
TEST_F(GrpoInvariance, CollectiveWeightBroadcastIsThePushThroughTheController) {
  const std::vector<std::string> async = {"ppo.async.enabled=true", "ppo.async.max_staleness=1"};
  std::vector<std::string> collective = async;
  collective.push_back("ppo.async.weight_sync=collective");
  expect_identical(run("zmq", async), run("collective", collective));
  core::RunLogReader log(dir_ / "runs" / "collective" / "log.h5");
  double pushes = 0;
  for (double p : log.metric("async/weight_pushes").values) pushes += p;
  EXPECT_GE(pushes, 10);
  // Between worker processes the broadcast is NCCL's: on CPUs that is a clear error naming the key, not a hang.
  if (torch::cuda::device_count() == 0) {
    collective.push_back("placement.mode=processes");
    const auto r = run_process(testing::run_args(dir_ / "grpo.yaml", "collective_processes", collective),
                               std::chrono::seconds(120));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("ppo.async.weight_sync: collective between worker processes"), std::string::npos)
        << r.output;
  }
}

// PPO with its critic is batch-invariant too: the critic's values and updates also go row by row.
TEST_F(GrpoInvariance, PpoWithACriticIsInvariantToMicroBatching) {
  const std::vector<std::string> ppo = {"ppo.advantage_estimator=gae", "ppo.kl_mode=reward", "ppo.kl_estimator=k1"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), ppo.begin(), ppo.end());
    return extra;
  };
  const auto whole = run("ppo_whole", with({}));
  expect_identical(whole, run("ppo_micro2", with({"ppo.micro_batch=2"})));
  core::RunLogReader log(whole / "log.h5");
  for (double g : log.metric("rollout/logprob_diff_max").values) EXPECT_EQ(g, 0.0);
  EXPECT_GT(log.metric("critic/value_loss").values.size(), 0u);
}

TEST_F(GrpoInvariance, WorkerProcessesAreBitwiseTheOneProcessRun) {
  expect_identical(run("inproc"), run("processes", {"placement.mode=processes"}));
}

// Sequence packing (fast mode): the actor and reference pack rows into block_size rows with segment-masked attention;
// the first iterations match the padded run within 1e-5 (float summation order; later, sampling amplifies it).
TEST_F(GrpoInvariance, PackedSequencesMatchPaddedWithinTolerance) {
  const auto padded = run("padded", {"runtime.deterministic=false"});
  const auto packed = run("packed", {"runtime.deterministic=false", "ppo.pack_sequences=true"});
  core::RunLogReader a(padded / "log.h5"), b(packed / "log.h5");
  for (const char* m : {"actor/policy_loss", "actor/grad_norm", "kl/mean", "reward/raw_mean"}) {
    const auto x = a.metric(m).values, y = b.metric(m).values;
    ASSERT_EQ(x.size(), y.size()) << m;
    for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(x[i], y[i], 1e-5 * std::max(1.0, std::abs(x[i]))) << m << " at " << i;
  }
}

TEST_F(GrpoInvariance, TwoDataParallelActorRanksMatchOneWithinTolerance) {
  const auto one = run("one", {"placement.mode=processes"});
  const auto two = run("two", {"placement.mode=processes", "placement.actor_ranks=2", "placement.reference_ranks=2"});
  core::RunLogReader a(one / "log.h5"), b(two / "log.h5");
  for (const char* m : {"actor/policy_loss", "actor/grad_norm", "reward/raw_mean"}) {
    const auto x = a.metric(m).values, y = b.metric(m).values;
    ASSERT_EQ(x.size(), y.size()) << m;
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(x[i], y[i], 1e-5 * std::max(1.0, std::abs(x[i]))) << m << " at " << i;
  }
}

}  // namespace
}  // namespace troupe
