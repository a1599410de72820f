// SFT with packed micro-batches (data.pack) against padded ones: the same tokens carry the same loss whether each
// example has its own padded row or several share a row behind segment-masked attention, so the packed loss and
// gradient equal the padded ones to float rounding, and a whole run logs the same losses within a stated tolerance,
// on one rank and on two thread-ranks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/config_binder.h"
#include "core/config_tree.h"
#include "core/run_log.h"
#include "data/arithmetic.h"
#include "data/text_datasets.h"
#include "distributed/communicator.h"
#include "distributed/thread_communicator.h"
#include "experiments/lm_training.h"
#include "experiments/trainer.h"
#include "models/gpt.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {
namespace {

using testing::ScratchDir;

// Arithmetic SFT data of mixed lengths ("7+5=12", "83*91=7553"): packing has something to pack.
data::ArithmeticTaskFiles arithmetic_data(const ScratchDir& dir) {
  data::ArithmeticOptions o;
  o.digits = 2;
  o.ops = "+*";
  o.sft_count = 96;
  o.prompt_count = 8;
  o.test_count = 8;
  return data::write_arithmetic_task(dir / "task", o);
}

TrainingConfig sft_config(const ScratchDir& dir, const data::ArithmeticTaskFiles& task, const std::string& name,
                          bool pack) {
  const std::string yaml =
      "kind: sft\nseed: 3\nruntime: {threads: 1}\n"
      "model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 257, dropout: 0.0}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
      "train: {steps: 8, batch_size: 8, grad_accum: 2, eval_every: 4, eval_batches: 2, log_every: 1}\n"
      "run: {name: " +
      name + ", dir: .}\n" + "data: {train: " + task.sft.string() + ", val: " + task.sft.string() +
      ", tokenizer: " + task.tokenizer.string() + ", pack: " + (pack ? "true" : "false") + "}\n";
  testing::write_file(dir / (name + ".yaml"), yaml);
  return core::bind_config<TrainingConfig>(core::load_config(dir / (name + ".yaml"), {})).value;
}

std::vector<double> metric(const std::filesystem::path& run, const std::string& name) {
  return core::RunLogReader(run / "log.h5").metric(name).values;
}

// The loss summed over a micro-batch and its gradient, through the padded and through the packed collation.
TEST(SftPacking, PackedLossAndGradientEqualThePaddedOnes) {
  ScratchDir dir;
  const auto task = arithmetic_data(dir);
  const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(task.tokenizer.string(), "");
  data::TextDatasetOptions o;
  o.eos_id = data::eos_id_of(tok);
  o.max_length = 32;
  const data::SftDataset ds = data::load_sft_jsonl(tok, task.sft, o);
  const std::vector<data::SftExample> examples(ds.examples.begin(), ds.examples.begin() + 16);
  torch::manual_seed(0);
  const models::GptConfig mc{.n_layer = 2, .n_head = 2, .n_embd = 32, .block_size = 32, .vocab_size = 257};
  models::Gpt model(mc);

  const auto loss_and_grads = [&](const models::GptInput& in, const torch::Tensor& targets) {
    model->zero_grad();
    const torch::Tensor loss = model->lm_loss_sum(model->hidden(in), targets, data::kIgnoreIndex);
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), grads);
  };
  const data::TextBatch padded = data::collate_sft(examples, 0);
  const int64_t L = padded.input_ids.size(1);
  models::GptInput pin;
  pin.ids = padded.input_ids.slice(1, 0, L - 1);
  pin.attention_mask = padded.attention_mask.slice(1, 0, L - 1);
  const auto [padded_loss, padded_grads] = loss_and_grads(pin, padded.labels.slice(1, 1, L));

  const data::PackedSftBatch packed = data::pack_sft(examples, 32, 0);
  ASSERT_LT(packed.inputs.size(0), 16) << "16 short examples share rows";
  models::GptInput kin;
  kin.ids = packed.inputs;
  kin.positions = packed.positions;
  kin.segment_ids = packed.segment_ids;
  const auto [packed_loss, packed_grads] = loss_and_grads(kin, packed.targets);
  EXPECT_NEAR(packed_loss, padded_loss, 1e-5 * padded_loss);
  for (size_t i = 0; i < padded_grads.size(); ++i) {
    const double scale = padded_grads[i].abs().max().item<double>();
    EXPECT_LE((packed_grads[i] - padded_grads[i]).abs().max().item<double>(), 1e-5 * std::max(scale, 1e-3)) << i;
  }

  // Without the segment mask the packed rows attend across examples: the loss moves (this test can fail).
  kin.segment_ids = torch::ones_like(packed.segment_ids);
  model->zero_grad();
  const double leaking = model->lm_loss_sum(model->hidden(kin), packed.targets, data::kIgnoreIndex).item<double>();
  // (A freshly drawn model attends almost uniformly, so the leak is small, yet 5× the tolerance above.)
  EXPECT_GT(std::abs(leaking - padded_loss), 5e-5 * padded_loss);
}

// Whole runs: packed and padded SFT log the same training and evaluation losses within 1e-5 (relative), on one
// rank and on two thread-ranks (each rank packs its own share of the global batch).
TEST(SftPacking, PackedRunsLogThePaddedRunsLosses) {
  ScratchDir dir;
  const auto task = arithmetic_data(dir);
  distributed::SingleProcessCommunicator one;
  ASSERT_EQ(run_training(sft_config(dir, task, "padded", false), "", "test", lm_objectives(), one, torch::kCPU), 0);
  ASSERT_EQ(run_training(sft_config(dir, task, "packed", true), "", "test", lm_objectives(), one, torch::kCPU), 0);
  const TrainingConfig two = sft_config(dir, task, "packed_w2", true);
  auto group = distributed::make_thread_group(2, std::chrono::seconds(120));
  std::vector<int> codes(2, -1);
  testing::on_rank_threads(2, [&](int rank) {
    codes[static_cast<size_t>(rank)] = run_training(two, "", "test", lm_objectives(), *group[rank], torch::kCPU);
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0}));
  for (const std::string name : {"train/loss", "eval/loss"}) {
    const auto reference = metric(dir / "padded", name);
    ASSERT_FALSE(reference.empty()) << name;
    for (const std::string run : {"packed", "packed_w2"}) {
      const auto got = metric(dir / run, name);
      ASSERT_EQ(got.size(), reference.size()) << run << " " << name;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], reference[i], 1e-5 * reference[i]) << run << " " << name << " #" << i;
      }
    }
  }
  // The losses moved: the runs trained (a run that did nothing would also "match").
  const auto losses = metric(dir / "padded", "train/loss");
  EXPECT_LT(losses.back(), 0.9 * losses.front());
}

}  // namespace
}  // namespace troupe::experiments
