// Implementation of experiments/lm_training.h: the pretrain and sft objectives.
#include "experiments/lm_training.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "core/seeding.h"
#include "data/chat_data.h"
#include "data/lm_data.h"
#include "data/text_datasets.h"
#include "distributed/data_parallel.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {
namespace {

// Inputs [B, T], what each position predicts [B, T] (kIgnoreIndex = no loss), and a padding mask (or undefined).
// Packed rows (data.pack) carry positions and segment ids instead of a mask.
struct LmMicro : MicroBatch {
  torch::Tensor ids, targets, mask, positions, segment_ids;
};

// Summed token cross-entropy (float32).
torch::Tensor lm_loss_sum(models::Gpt& model, const LmMicro& m) {
  models::GptInput in;
  in.ids = m.ids;
  in.attention_mask = m.mask;
  in.positions = m.positions;
  in.segment_ids = m.segment_ids;
  return model->lm_loss_sum(model->hidden(in), m.targets, data::kIgnoreIndex);
}

std::map<std::string, double> eval_metrics(double sum, int64_t count) {
  if (count == 0) return {};
  const double loss = sum / static_cast<double>(count);
  return {{"eval/loss", loss}, {"eval/ppl", std::exp(loss)}};
}

class PretrainObjective final : public Objective {
 public:
  PretrainObjective(const TrainingConfig& c, models::Gpt& model) : c_(c) {
    data::LmBatchOptions o;
    o.batch_size = c.train.batch_size;
    o.block_size = c.train.block_size > 0 ? c.train.block_size : model->config().block_size;
    o.seed = core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0);
    o.model_vocab_size = model->config().vocab_size;
    train_ = std::make_unique<data::LmBatchSampler>(c.data.train, o);
    if (!c.data.val.empty()) data::LmBatchSampler check(c.data.val, o);  // fail early on a bad file
  }
  const char* unit_name() const override { return "tokens"; }

  std::unique_ptr<MicroBatch> next(int rank, int world) override {
    const data::LmBatch b = train_->next_random();
    // Every rank draws the same global batch (same seed) and keeps its rows, so W ranks see what one rank would.
    const auto [begin, end] = distributed::shard_rows(c_.train.batch_size, rank, world);
    auto m = std::make_unique<LmMicro>();
    m->ids = b.input_ids.slice(0, begin, end);
    m->targets = b.targets.slice(0, begin, end);
    m->units = m->ids.numel();
    return m;
  }
  LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) override {
    return {lm_loss_sum(model, static_cast<const LmMicro&>(batch)), {}};
  }
  // Mean token loss over the first eval_batches windows of the validation file (all when 0), in order.
  std::map<std::string, double> evaluate(models::Gpt& model) override {
    if (c_.data.val.empty()) return {};
    data::LmBatchSampler val(c_.data.val, train_->options());
    double sum = 0;
    int64_t count = 0;
    for (int64_t batches = 0; c_.train.eval_batches == 0 || batches < c_.train.eval_batches; ++batches) {
      const auto b = val.next_sequential();
      if (!b) break;
      LmMicro m;
      m.ids = b->input_ids;
      m.targets = b->targets;
      sum += lm_loss_sum(model, m).item<double>();
      count += b->input_ids.numel();
    }
    return eval_metrics(sum, count);
  }
  std::vector<int64_t> data_state() const override { return train_->state().to_vector(); }
  void restore_data(const std::vector<int64_t>& s) override { train_->restore(data::LmBatchState::from_vector(s)); }

 private:
  const TrainingConfig& c_;
  std::unique_ptr<data::LmBatchSampler> train_;
};

class SftObjective final : public Objective {
 public:
  SftObjective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c) {
    tokenizer_.emplace(tokenizers::open_tokenizer(c.data.tokenizer, c.data.encoding));
    if (tokenizer_->vocab_size() > model->config().vocab_size) {
      throw ConfigError("data.tokenizer has " + std::to_string(tokenizer_->vocab_size()) +
                        " ids but the model's vocab_size is " + std::to_string(model->config().vocab_size));
    }
    data::TextDatasetOptions o;
    o.eos_id = data::eos_id_of(*tokenizer_);
    o.max_length = std::min(c.data.max_length, model->config().block_size);
    o.overlong = c.data.overlong;
    o.chat_template = data::load_chat_template(c.data.chat_template);
    pad_id_ = o.eos_id.value_or(0);
    pack_capacity_ = model->config().block_size;
    train_ = data::load_sft_jsonl(*tokenizer_, c.data.train, o);
    if (!c.data.val.empty()) val_ = data::load_sft_jsonl(*tokenizer_, c.data.val, o);
    const auto& s = train_.stats;
    spdlog::info("sft data: {} examples ({} truncated, {} dropped), {} tokens", s.examples, s.truncated, s.dropped,
                 s.tokens);
    if (log != nullptr) {
      log->log_scalars(0, {{"data/examples", static_cast<double>(s.examples)},
                           {"data/truncated", static_cast<double>(s.truncated)},
                           {"data/dropped", static_cast<double>(s.dropped)},
                           {"data/tokens", static_cast<double>(s.tokens)}});
    }
    shuffler_ = std::make_unique<data::EpochShuffler>(train_.examples.size(), c.train.batch_size,
                                                      core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0));
  }
  const char* unit_name() const override { return "tokens"; }

  std::unique_ptr<MicroBatch> next(int rank, int world) override {
    const std::vector<int64_t> global = shuffler_->next();
    const auto [begin, end] = distributed::shard_rows(c_.train.batch_size, rank, world);
    const auto from = std::min<size_t>(global.size(), static_cast<size_t>(begin));
    const auto to = std::min<size_t>(global.size(), static_cast<size_t>(end));
    std::vector<int64_t> mine(global.begin() + static_cast<std::ptrdiff_t>(from),
                              global.begin() + static_cast<std::ptrdiff_t>(to));
    const bool none = mine.empty();            // the epoch's last batch may not reach this rank
    if (none) mine.push_back(global.front());  // keep shapes; masked out below
    auto m = micro(train_, mine);
    if (none) {
      m->targets.fill_(data::kIgnoreIndex);
      m->units = 0;
    }
    return m;
  }
  LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) override {
    return {lm_loss_sum(model, static_cast<const LmMicro&>(batch)), {}};
  }
  std::map<std::string, double> evaluate(models::Gpt& model) override {
    if (c_.data.val.empty()) return {};
    const auto n = static_cast<int64_t>(val_.examples.size());
    double sum = 0;
    int64_t count = 0, batches = 0;
    for (int64_t at = 0; at < n && (c_.train.eval_batches == 0 || batches < c_.train.eval_batches);
         at += c_.train.batch_size, ++batches) {
      std::vector<int64_t> idx;
      for (int64_t i = at; i < std::min(n, at + c_.train.batch_size); ++i) idx.push_back(i);
      const auto m = micro(val_, idx);
      sum += lm_loss_sum(model, *m).item<double>();
      count += m->units;
    }
    return eval_metrics(sum, count);
  }
  std::vector<int64_t> data_state() const override { return shuffler_->state().to_vector(); }
  void restore_data(const std::vector<int64_t>& s) override { shuffler_->restore(data::ShuffleState::from_vector(s)); }

 private:
  // The micro-batch of `indices`, padded (the longest example sets the length) or packed (data.pack).
  std::unique_ptr<LmMicro> micro(const data::SftDataset& data, const std::vector<int64_t>& indices) const {
    std::vector<data::SftExample> examples;
    for (int64_t i : indices) examples.push_back(data.examples[static_cast<size_t>(i)]);
    auto m = std::make_unique<LmMicro>();
    if (c_.data.pack) {
      const data::PackedSftBatch p = data::pack_sft(examples, pack_capacity_, pad_id_);
      m->ids = p.inputs;
      m->targets = p.targets;
      m->positions = p.positions;
      m->segment_ids = p.segment_ids;
      m->units = (m->targets != data::kIgnoreIndex).sum().item<int64_t>();
      return m;
    }
    const data::TextBatch b = data::collate_sft(examples, pad_id_);
    const int64_t L = b.input_ids.size(1);
    m->ids = b.input_ids.slice(1, 0, L - 1);
    m->mask = b.attention_mask.slice(1, 0, L - 1);
    m->targets = b.labels.slice(1, 1, L);  // position t predicts token t + 1
    m->units = (m->targets != data::kIgnoreIndex).sum().item<int64_t>();
    return m;
  }

  const TrainingConfig& c_;
  std::optional<tokenizers::BpeTokenizer> tokenizer_;
  data::SftDataset train_, val_;
  std::unique_ptr<data::EpochShuffler> shuffler_;
  int64_t pad_id_ = 0;
  int64_t pack_capacity_ = 0;  // positions per packed row: the model's block_size
};

int run_lm(const TrainingConfig& c, const std::string& yaml, const std::string& command_line) {
  return run_training(c, yaml, command_line, lm_objectives());
}

}  // namespace

ObjectiveFactory lm_objectives() {
  ObjectiveFactory f;
  f.make = [](const TrainingConfig& cfg, models::Gpt& model, core::RunLog* log) -> std::unique_ptr<Objective> {
    if (cfg.kind == TrainKind::kPretrain) return std::make_unique<PretrainObjective>(cfg, model);
    return std::make_unique<SftObjective>(cfg, model, log);
  };
  return f;
}

ExperimentKind pretrain_kind() {
  return make_kind<TrainingConfig>("pretrain", "causal-LM pretraining of a GPT on token files", run_lm);
}

ExperimentKind sft_kind() {
  return make_kind<TrainingConfig>("sft", "supervised fine-tuning on prompt/response JSONL (loss on responses)",
                                   run_lm);
}

}  // namespace troupe::experiments
