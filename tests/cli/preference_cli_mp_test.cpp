// `troupe train rm` and `troupe train dpo` as a user runs them, on a preference set whose preferred answers are
// easy to learn: the reward model learns to rank them and records its reward statistics; DPO starts exactly at
// the loss of a policy equal to its reference (log 2 for DPO, 1/(2β)² for IPO) and learns the preference; two
// MPI ranks reproduce one rank's losses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/run_log.h"
#include "models/gpt_checkpoint.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

// Chosen answers are cheerful, rejected ones gloomy; the prompts vary.
std::string preference_jsonl(int n, int offset) {
  const char* good[] = {" great fun", " lovely and kind", " a happy day", " wonderful work"};
  const char* bad[] = {" awful bore", " sad and cruel", " a terrible day", " dreadful mess"};
  std::string out;
  for (int i = 0; i < n; ++i) {
    const int k = (i + offset) % 4;
    out += "{\"prompt\": \"Item " + std::to_string(i + offset) + " was\", \"chosen\": \"" + good[k] +
           "\", \"rejected\": \"" + bad[(k + 1) % 4] + "\"}\n";
  }
  return out;
}

class PreferenceCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "train.jsonl", preference_jsonl(32, 0));
    write_file(dir_ / "val.jsonl", preference_jsonl(16, 100));
    base_ =
        "seed: 3\n"
        "run: {dir: " +
        dir_.path().string() +
        "/runs}\n"
        "runtime: {threads: 1}\n"
        "model: {n_layer: 1, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 50257, dropout: 0.0}\n"
        "data: {train: " +
        (dir_ / "train.jsonl").string() + ", val: " + (dir_ / "val.jsonl").string() +
        ", tokenizer: " + (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string() + "}\n";
  }
  testing::ProcessResult train(const std::string& kind, const std::string& yaml, std::vector<std::string> extra) {
    write_file(dir_ / (kind + ".yaml"), "kind: " + kind + "\n" + base_ + yaml);
    std::vector<std::string> a = {testing::cli_path(), "train", kind, (dir_ / (kind + ".yaml")).string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_process(a, std::chrono::seconds(180));
  }
  std::filesystem::path run(const std::string& name) const { return dir_ / "runs" / name; }
  ScratchDir dir_;
  std::string base_;
};

TEST_F(PreferenceCli, RewardModelLearnsToRankAndRecordsRewardStatistics) {
  auto r = train("rm",
                 "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
                 "train: {steps: 40, batch_size: 8, eval_every: 20, log_every: 10}\n",
                 {"run.name=rm"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rm data: 32 pairs (0 truncated, 0 dropped)"));
  EXPECT_THAT(r.output, HasSubstr("pairs/s"));
  core::RunLogReader log(run("rm") / "log.h5");
  const auto acc = log.metric("eval/accuracy");
  ASSERT_EQ(acc.steps, (std::vector<int64_t>{20, 40}));
  EXPECT_GE(acc.values.back(), 0.9) << "held-out pairwise accuracy";
  const auto loss = log.metric("train/loss");
  EXPECT_LT(loss.values.back(), 0.5 * loss.values.front());
  EXPECT_NEAR(loss.values.front(), std::log(2.0), 0.15) << "a fresh head scores both answers alike";

  // The final checkpoint holds the reward model (with its head) and the reward statistics it logged.
  const core::CheckpointState state = models::load_checkpoint_at(run("rm"));
  EXPECT_EQ(state.step, 40);
  EXPECT_DOUBLE_EQ(state.get<double>("reward.mean"), log.metric("rm/reward_mean").values.at(0));
  EXPECT_GT(state.get<double>("reward.std"), 0.0);
  models::Gpt rm = models::gpt_from_checkpoint(state, "model");
  EXPECT_TRUE(rm->heads().reward);
}

TEST_F(PreferenceCli, DpoStartsAtLogTwoLearnsThePreferenceAndMatchesAcrossRanks) {
  const std::string yaml =
      "optim: {lr: 1.0e-2, warmup_steps: 2}\n"
      "train: {steps: 16, batch_size: 8, eval_every: 16, log_every: 4}\n"
      "dpo: {beta: 0.1}\n";
  auto r = train("dpo", yaml, {"run.name=dpo"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("reference log-probs of 48 pairs computed once (sum per response)"));
  core::RunLogReader log(run("dpo") / "log.h5");
  const auto loss = log.metric("train/loss");
  // Step 1's loss is taken before any update: policy == reference, h = 0, loss = -log σ(0) = log 2 exactly.
  EXPECT_NEAR(loss.values.front(), std::log(2.0), 1e-5);
  EXPECT_NEAR(log.metric("train/rewards_margin").values.front(), 0.0, 1e-5);
  EXPECT_LT(loss.values.back(), 0.5 * std::log(2.0));
  EXPECT_GE(log.metric("eval/rewards_accuracy").values.back(), 0.9);
  EXPECT_GT(log.metric("eval/rewards_margin").values.back(), 0.0);
  EXPECT_TRUE(std::filesystem::exists(run("dpo") / "hf" / "model.safetensors"));

  // IPO compares per-token means and starts at (0 - 1/(2β))² = 25 for β = 0.1.
  auto ipo = train("dpo", yaml, {"run.name=ipo", "dpo.loss=ipo", "train.steps=2"});
  ASSERT_EQ(ipo.exit_code, 0) << ipo.output;
  EXPECT_THAT(ipo.output, HasSubstr("(mean per response)"));
  EXPECT_NEAR(core::RunLogReader(run("ipo") / "log.h5").metric("train/loss").values.front(), 25.0, 1e-4);

  // Two ranks, each half of the same global batch of 8, give the same losses.
  std::vector<std::string> two = {
      TROUPE_MPIEXEC, "--allow-run-as-root", "--oversubscribe",   "-np",   "2",   "--mca",
      "btl",          "self,vader",          testing::cli_path(), "train", "dpo", (dir_ / "dpo.yaml").string(),
      "run.name=dpo2"};
  auto r2 = run_process(two, std::chrono::seconds(180));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  const auto loss2 = core::RunLogReader(run("dpo2") / "log.h5").metric("train/loss");
  ASSERT_EQ(loss.steps, loss2.steps);
  for (size_t i = 0; i < loss.values.size(); ++i) EXPECT_NEAR(loss.values[i], loss2.values[i], 1e-5) << i;

  // Bad settings are config errors naming the key.
  auto bad = train("dpo", yaml, {"run.name=bad", "dpo.loss=kto"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("loss"));
  EXPECT_THAT(bad.output, HasSubstr("dpo, ipo or cdpo"));
}

}  // namespace
}  // namespace troupe
