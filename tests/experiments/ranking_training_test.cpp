// The ranking reward model (experiments/ranking_training.h) under data parallelism in one process: W = 2 and 3 ranks
// as threads each take their share of every global batch of rankings (sharded by ranking; with 13 rankings in
// batches of 6 the epoch's last batch of 1 leaves every rank but rank 0 without a ranking, which then weighs 0) and
// log the loss, pairwise accuracy and comparison count one rank logs; before the mpirun test
// (tests/cli/ranking_cli_mp_test.cpp).
#include "experiments/ranking_training.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/config_binder.h"
#include "core/config_tree.h"
#include "core/run_log.h"
#include "distributed/communicator.h"
#include "distributed/thread_communicator.h"
#include "experiments/trainer.h"
#include "tests/support/test_support.h"

namespace troupe::experiments::ranking_tests {
namespace {

using testing::ScratchDir;

// 13 rankings of 2..4 responses ordered by a sentiment level (ties where two share a level).
std::string rankings() {
  const char* phrases[4] = {" awful", " dull", " nice", " wonderful"};
  auto level = [](int i, int k) { return (i * 7 + k * 5 + k * k) % 4; };
  std::string out;
  for (int i = 0; i < 13; ++i) {
    const int K = 2 + i % 3;
    std::string responses, ranks;
    for (int k = 0; k < K; ++k) {
      int rank = 1;
      for (int j = 0; j < K; ++j) rank += level(i, j) > level(i, k) ? 1 : 0;
      responses += std::string(k ? ", " : "") + "\"" + phrases[level(i, k)] + "\"";
      ranks += std::string(k ? ", " : "") + std::to_string(rank);
    }
    out += "{\"prompt\": \"Item " + std::to_string(i) + " was\", \"responses\": [" + responses + "], \"ranks\": [" +
           ranks + "]}\n";
  }
  return out;
}

TrainingConfig config(const ScratchDir& dir, const std::string& name) {
  const std::string yaml =
      "kind: rm\nseed: 5\nruntime: {threads: 1}\n"
      "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 16, vocab_size: 50257, dropout: 0.0}\n"
      "optim: {lr: 1.0e-2, warmup_steps: 2}\n"
      "train: {steps: 6, batch_size: 6, grad_accum: 2, eval_every: 100, log_every: 1}\n"
      "run: {name: " +
      name +
      ", dir: .}\n"
      "data: {format: rankings, train: train.jsonl, tokenizer: " +
      (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string() + "}\n";
  testing::write_file(dir / (name + ".yaml"), yaml);
  return core::bind_config<TrainingConfig>(core::load_config(dir / (name + ".yaml"), {})).value;
}

ObjectiveFactory ranking_rm() {
  ObjectiveFactory f;
  f.heads.reward = true;
  f.make = make_ranking_rm_objective;
  return f;
}

TEST(RankingTraining, ThreadRanksLogTheMetricsOfOneRank) {
  ScratchDir dir;
  testing::write_file(dir / "train.jsonl", rankings());
  distributed::SingleProcessCommunicator one;
  ASSERT_EQ(run_training(config(dir, "w1"), "", "test", ranking_rm(), one, torch::kCPU), 0);
  core::RunLogReader reference(dir / "w1" / "log.h5");
  ASSERT_EQ(reference.metric("train/loss").values.size(), 6u);
  for (const int world : {2, 3}) {
    const std::string name = "w" + std::to_string(world);
    const TrainingConfig c = config(dir, name);
    auto group = distributed::make_thread_group(world, std::chrono::seconds(120));
    std::vector<int> codes(static_cast<size_t>(world), -1);
    testing::on_rank_threads(world, [&](int rank) {
      codes[static_cast<size_t>(rank)] = run_training(c, "", "test", ranking_rm(), *group[rank], torch::kCPU);
    });
    for (int code : codes) EXPECT_EQ(code, 0);
    core::RunLogReader got(dir / name / "log.h5");
    // Step 1 differs only in float summation order (each rank pads its rankings to its own length): 3e-8 measured.
    // Adam at lr 1e-2 then magnifies that noise to at most 1.0e-5 (measured), hence 1e-4 after step 1; a wrong
    // shard (other rankings) changes the loss by ~1e-2. The comparison counts are exact.
    const auto a = reference.metric("train/loss").values, b = got.metric("train/loss").values;
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], i == 0 ? 1e-6 : 1e-4) << name << " step " << i + 1;
    EXPECT_EQ(reference.metric("train/comparisons").values, got.metric("train/comparisons").values) << name;
    const auto acc_a = reference.metric("train/accuracy").values, acc_b = got.metric("train/accuracy").values;
    ASSERT_EQ(acc_a.size(), acc_b.size()) << name;
    // A ratio of exact counts; the thread-rank runs logged 0.6 as 0.59999995 (fp32 rounding) in 2 of 3 runs on a loaded
    // machine, why only sometimes is not yet known. 1e-6 is float precision; one comparison more or less moves it by
    // >= 1/29.
    for (size_t i = 0; i < acc_a.size(); ++i) EXPECT_NEAR(acc_a[i], acc_b[i], 1e-6) << name << " step " << i + 1;
  }
}

}  // namespace
}  // namespace troupe::experiments::ranking_tests
