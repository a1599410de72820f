// The trainer's data parallelism in one process: W ranks as threads of an in-memory group
// (distributed/thread_communicator.h) train on the same global batch (each rank its share of the rows) and log the
// losses one rank logs, for W = 2 and 3 against W = 1 (the global micro-batch must be a multiple of W: 6 and 12),
// before the mpirun test of the same property (tests/cli/train_cli_mp_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/config_binder.h"
#include "core/config_tree.h"
#include "core/run_log.h"
#include "distributed/communicator.h"
#include "distributed/thread_communicator.h"
#include "experiments/lm_training.h"
#include "experiments/trainer.h"
#include "tests/support/test_support.h"
#include "tests/support/token_streams.h"

namespace troupe::experiments {
namespace {

using testing::ScratchDir;

TrainingConfig config(const ScratchDir& dir, const std::string& name, int64_t batch) {
  const std::string yaml =
      "kind: pretrain\nseed: 5\nruntime: {threads: 1}\n"
      "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 16, vocab_size: 97, dropout: 0.0}\n"
      "optim: {lr: 1.0e-2, warmup_steps: 2}\n"
      "train: {steps: 6, batch_size: " +
      std::to_string(batch) +
      ", grad_accum: 2, eval_every: 100, log_every: 1}\n"
      "run: {name: " +
      name +
      ", dir: .}\n"  // relative to this file: the scratch directory
      "data: {train: train.bin}\n";
  testing::write_file(dir / (name + ".yaml"), yaml);
  return core::bind_config<TrainingConfig>(core::load_config(dir / (name + ".yaml"), {})).value;
}

std::vector<double> losses(const std::filesystem::path& run) {
  return core::RunLogReader(run / "log.h5").metric("train/loss").values;
}

TEST(TrainerDataParallel, ThreadRanksLogTheLossesOfOneRank) {
  ScratchDir dir;
  testing::write_learnable_tokens(dir / "train.bin", 20000, 1);
  for (const int64_t batch : {6, 12}) {
    const std::string base = "b" + std::to_string(batch);
    distributed::SingleProcessCommunicator one;
    ASSERT_EQ(run_training(config(dir, base + "_w1", batch), "", "test", lm_objectives(), one, torch::kCPU), 0);
    const auto reference = losses(dir / (base + "_w1"));
    ASSERT_EQ(reference.size(), 6u);
    for (const int world : {2, 3}) {
      const std::string name = base + "_w" + std::to_string(world);
      const TrainingConfig c = config(dir, name, batch);
      auto group = distributed::make_thread_group(world, std::chrono::seconds(120));
      std::vector<int> codes(static_cast<size_t>(world), -1);
      testing::on_rank_threads(world, [&](int rank) {
        codes[static_cast<size_t>(rank)] = run_training(c, "", "test", lm_objectives(), *group[rank], torch::kCPU);
      });
      for (int code : codes) EXPECT_EQ(code, 0);
      const auto got = losses(dir / name);
      ASSERT_EQ(got.size(), reference.size()) << name;
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], reference[i], 1e-5) << name << " step " << i + 1;
    }
  }
}

}  // namespace
}  // namespace troupe::experiments
