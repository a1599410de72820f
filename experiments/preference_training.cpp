// Implementation of experiments/preference_training.h: the rm and dpo objectives.
#include "experiments/preference_training.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"
#include "core/seeding.h"
#include "data/chat_data.h"
#include "data/text_datasets.h"
#include "distributed/data_parallel.h"
#include "experiments/trainer.h"
#include "rlhf/preference_losses.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {
namespace {

// Rows [0, B) are the chosen sequences and [B, 2B) the rejected ones of the same pairs, right-padded to one L.
struct PairMicro : MicroBatch {
  torch::Tensor ids, mask, labels;  // [2B, L]
  std::vector<int64_t> indices;     // dataset index of each pair
  int64_t pairs = 0;                // B
};

PairMicro collate_pairs(const data::PreferenceDataset& data, const std::vector<int64_t>& indices, int64_t pad_id) {
  std::vector<data::PreferenceExample> examples;
  for (int64_t i : indices) examples.push_back(data.examples[static_cast<size_t>(i)]);
  const data::PreferenceBatch b = data::collate_preference(examples, pad_id);
  PairMicro m;
  m.ids = torch::cat({b.chosen.input_ids, b.rejected.input_ids});
  m.mask = torch::cat({b.chosen.attention_mask, b.rejected.attention_mask});
  m.labels = torch::cat({b.chosen.labels, b.rejected.labels});
  m.indices = indices;
  m.pairs = static_cast<int64_t>(indices.size());
  m.units = m.pairs;
  return m;
}

// Response log-probabilities of each row: (sum over response tokens [2B], response token count [2B]).
std::pair<torch::Tensor, torch::Tensor> response_logprobs(models::Gpt& model, const PairMicro& m) {
  const int64_t L = m.ids.size(1);
  models::GptInput in;
  in.ids = m.ids.slice(1, 0, L - 1);
  in.attention_mask = m.mask.slice(1, 0, L - 1);
  const torch::Tensor logits = model->logits(model->hidden(in)).to(torch::kFloat32);  // [2B, L-1, V]
  const torch::Tensor targets = m.labels.slice(1, 1, L).to(logits.device());          // position t predicts t + 1
  const torch::Tensor real = targets != data::kIgnoreIndex;
  const torch::Tensor logp =
      torch::log_softmax(logits, -1).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);  // [2B, L-1]
  return {(logp * real).sum(1), real.sum(1).to(torch::kFloat32)};
}

// Shared data handling: the tokenizer, train/val pairs, the seeded shuffler and this rank's rows.
class PreferenceData {
 public:
  PreferenceData(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c) {
    data::TextDatasetOptions o;
    if (!c.data.tokenizer.empty()) {  // optional: pre-tokenised (*_ids) data needs none
      tokenizer_.emplace(tokenizers::open_tokenizer(c.data.tokenizer, c.data.encoding));
      if (tokenizer_->vocab_size() > model->config().vocab_size) {
        throw ConfigError("data.tokenizer has " + std::to_string(tokenizer_->vocab_size()) +
                          " ids but the model's vocab_size is " + std::to_string(model->config().vocab_size));
      }
      o.eos_id = data::eos_id_of(*tokenizer_);
    }
    o.vocab_size = model->config().vocab_size;
    o.max_length = std::min(c.data.max_length, model->config().block_size);
    o.overlong = c.data.overlong;
    o.chat_template = data::load_chat_template(c.data.chat_template);
    pad_id_ = o.eos_id.value_or(0);
    const tokenizers::BpeTokenizer* tok = tokenizer_ ? &*tokenizer_ : nullptr;
    train_ = data::load_preference_jsonl(tok, c.data.train, o);
    if (!c.data.val.empty()) val_ = data::load_preference_jsonl(tok, c.data.val, o);
    const auto& s = train_.stats;
    spdlog::info("{} data: {} pairs ({} truncated, {} dropped), {} tokens", core::enum_name(c.kind), s.examples,
                 s.truncated, s.dropped, s.tokens);
    if (log != nullptr) {
      log->log_scalars(0, {{"data/pairs", static_cast<double>(s.examples)},
                           {"data/truncated", static_cast<double>(s.truncated)},
                           {"data/dropped", static_cast<double>(s.dropped)},
                           {"data/tokens", static_cast<double>(s.tokens)}});
    }
    shuffler_ = std::make_unique<data::EpochShuffler>(train_.examples.size(), c.train.batch_size,
                                                      core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0));
  }

  // This rank's rows of the next global batch (distributed::shard_rows of the configured batch size, cut at the
  // end of a shorter last batch); units 0 when that batch does not reach this rank (one pair is kept for shapes
  // and weighted 0 by the caller).
  std::unique_ptr<PairMicro> next(int rank, int world) {
    const std::vector<int64_t> global = shuffler_->next();
    const auto rows = distributed::shard_rows(c_.train.batch_size, rank, world);
    const auto from = std::min<size_t>(global.size(), static_cast<size_t>(rows.begin));
    const auto to = std::min<size_t>(global.size(), static_cast<size_t>(rows.end));
    std::vector<int64_t> mine(global.begin() + static_cast<std::ptrdiff_t>(from),
                              global.begin() + static_cast<std::ptrdiff_t>(to));
    const bool none = mine.empty();
    if (none) mine.push_back(global.front());
    auto m = std::make_unique<PairMicro>(collate_pairs(train_, mine, pad_id_));
    if (none) m->units = 0;
    return m;
  }

  // Batches over a whole dataset in order (evaluation, reference log-probs, reward statistics).
  template <class F>
  void for_each_batch(const data::PreferenceDataset& data, int64_t max_batches, F&& f) const {
    const auto n = static_cast<int64_t>(data.examples.size());
    int64_t batches = 0;
    for (int64_t at = 0; at < n && (max_batches == 0 || batches < max_batches); at += c_.train.batch_size, ++batches) {
      std::vector<int64_t> idx;
      for (int64_t i = at; i < std::min(n, at + c_.train.batch_size); ++i) idx.push_back(i);
      f(collate_pairs(data, idx, pad_id_));
    }
  }

  const data::PreferenceDataset& train() const { return train_; }
  const data::PreferenceDataset& val() const { return val_; }
  bool has_val() const { return !c_.data.val.empty(); }
  std::vector<int64_t> state() const { return shuffler_->state().to_vector(); }
  void restore(const std::vector<int64_t>& s) { shuffler_->restore(data::ShuffleState::from_vector(s)); }

 private:
  const TrainingConfig& c_;
  std::optional<tokenizers::BpeTokenizer> tokenizer_;
  data::PreferenceDataset train_, val_;
  std::unique_ptr<data::EpochShuffler> shuffler_;
  int64_t pad_id_ = 0;
};

// Zero weight for the placeholder pair of a rank the batch did not reach.
double weight_of(const PairMicro& m) { return m.units == 0 ? 0.0 : 1.0; }

class RewardModelObjective final : public Objective {
 public:
  RewardModelObjective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c), data_(c, model, log) {}
  const char* unit_name() const override { return "pairs"; }
  std::unique_ptr<MicroBatch> next(int rank, int world) override { return data_.next(rank, world); }

  LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) override {
    const auto& m = static_cast<const PairMicro&>(batch);
    const Scores s = score(model, m);
    const double w = weight_of(m);
    const torch::Tensor margin =
        c_.rm.margin > 0 ? torch::full({m.pairs}, c_.rm.margin, s.chosen.options()) : torch::Tensor();
    const torch::Tensor loss = rlhf::bradley_terry_loss(s.chosen, s.rejected, margin).sum() * w;
    return {loss,
            {{"train/accuracy", w * (s.chosen > s.rejected).sum().item<double>()},
             {"train/reward_chosen", w * s.chosen.sum().item<double>()},
             {"train/reward_rejected", w * s.rejected.sum().item<double>()}}};
  }

  std::map<std::string, double> evaluate(models::Gpt& model) override {
    if (!data_.has_val()) return {};
    double loss = 0, correct = 0, margin = 0;
    int64_t pairs = 0;
    data_.for_each_batch(data_.val(), c_.train.eval_batches, [&](const PairMicro& m) {
      const Scores s = score(model, m);
      loss += rlhf::bradley_terry_loss(s.chosen, s.rejected).sum().item<double>();
      correct += (s.chosen > s.rejected).sum().item<double>();
      margin += (s.chosen - s.rejected).sum().item<double>();
      pairs += m.pairs;
    });
    const auto n = static_cast<double>(std::max<int64_t>(pairs, 1));
    return {{"eval/loss", loss / n}, {"eval/accuracy", correct / n}, {"eval/margin", margin / n}};
  }

  // Mean and std of the reward over every training response (chosen and rejected), for normalisation.
  std::map<std::string, double> finish(models::Gpt& model, core::CheckpointState& final_state) override {
    torch::NoGradGuard no_grad;
    model->eval();
    std::vector<torch::Tensor> all;
    data_.for_each_batch(data_.train(), 0, [&](const PairMicro& m) {
      const Scores s = score(model, m);
      all.push_back(s.chosen);
      all.push_back(s.rejected);
    });
    model->train();
    const torch::Tensor r = torch::cat(all).to(torch::kCPU, torch::kFloat64);
    const double mean = r.mean().item<double>();
    const double std = r.std(/*unbiased=*/false).item<double>();
    final_state.extra["reward.mean"] = mean;
    final_state.extra["reward.std"] = std;
    spdlog::info("reward over {} training responses: mean {:.4f}, std {:.4f}", r.numel(), mean, std);
    return {{"rm/reward_mean", mean}, {"rm/reward_std", std}};
  }

  std::vector<int64_t> data_state() const override { return data_.state(); }
  void restore_data(const std::vector<int64_t>& s) override { data_.restore(s); }
  bool export_hf() const override { return false; }  // the reward head has no Hugging Face GPT-2 counterpart

 private:
  struct Scores {
    torch::Tensor chosen, rejected;  // [B] float32
  };
  static Scores score(models::Gpt& model, const PairMicro& m) {
    models::GptInput in;
    in.ids = m.ids;
    in.attention_mask = m.mask;
    const torch::Tensor r = model->reward(model->hidden(in), m.mask).to(torch::kFloat32);  // [2B]
    return {r.slice(0, 0, m.pairs), r.slice(0, m.pairs, 2 * m.pairs)};
  }

  const TrainingConfig& c_;
  PreferenceData data_;
};

class DpoObjective final : public Objective {
 public:
  // `model` is the starting policy, before adapters or freezing: it is the reference.
  DpoObjective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c), data_(c, model, log) {
    options_.beta = c.dpo.beta;
    options_.loss = c.dpo.loss;
    options_.label_smoothing = c.dpo.label_smoothing;
    mean_ = c.dpo.logprobs == LogprobReduction::kMean ||
            (c.dpo.logprobs == LogprobReduction::kAuto && options_.loss == rlhf::DpoLoss::kIpo);
    train_ref_ = reference_logprobs(model, data_.train());
    if (data_.has_val()) val_ref_ = reference_logprobs(model, data_.val());
    spdlog::info("dpo: reference log-probs of {} pairs computed once ({} per response)",
                 train_ref_.size(0) + (val_ref_.defined() ? val_ref_.size(0) : 0), mean_ ? "mean" : "sum");
  }
  const char* unit_name() const override { return "pairs"; }
  std::unique_ptr<MicroBatch> next(int rank, int world) override { return data_.next(rank, world); }

  LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) override {
    const auto& m = static_cast<const PairMicro&>(batch);
    const Terms t = terms(model, m, train_ref_);
    const double w = weight_of(m);
    return {t.out.loss.sum() * w,
            {{"train/rewards_chosen", w * t.out.chosen_rewards.sum().item<double>()},
             {"train/rewards_rejected", w * t.out.rejected_rewards.sum().item<double>()},
             {"train/rewards_margin", w * (t.out.chosen_rewards - t.out.rejected_rewards).sum().item<double>()},
             {"train/rewards_accuracy", w * (t.out.chosen_rewards > t.out.rejected_rewards).sum().item<double>()},
             {"train/logps_chosen", w * t.chosen.detach().sum().item<double>()},
             {"train/logps_rejected", w * t.rejected.detach().sum().item<double>()}}};
  }

  std::map<std::string, double> evaluate(models::Gpt& model) override {
    if (!data_.has_val()) return {};
    double loss = 0, correct = 0, margin = 0;
    int64_t pairs = 0;
    data_.for_each_batch(data_.val(), c_.train.eval_batches, [&](const PairMicro& m) {
      const Terms t = terms(model, m, val_ref_);
      loss += t.out.loss.sum().item<double>();
      correct += (t.out.chosen_rewards > t.out.rejected_rewards).sum().item<double>();
      margin += (t.out.chosen_rewards - t.out.rejected_rewards).sum().item<double>();
      pairs += m.pairs;
    });
    const auto n = static_cast<double>(std::max<int64_t>(pairs, 1));
    return {{"eval/loss", loss / n}, {"eval/rewards_accuracy", correct / n}, {"eval/rewards_margin", margin / n}};
  }

  std::vector<int64_t> data_state() const override { return data_.state(); }
  void restore_data(const std::vector<int64_t>& s) override { data_.restore(s); }

 private:
  struct Terms {
    rlhf::DpoLossOut out;
    torch::Tensor chosen, rejected;  // [B] policy response log-probs
  };

  // [B] response log-probs of rows (chosen, rejected), reduced per dpo.logprobs.
  std::pair<torch::Tensor, torch::Tensor> policy_logprobs(models::Gpt& model, const PairMicro& m) const {
    auto [sum, count] = response_logprobs(model, m);
    const torch::Tensor lp = mean_ ? sum / count.clamp_min(1) : sum;
    return {lp.slice(0, 0, m.pairs), lp.slice(0, m.pairs, 2 * m.pairs)};
  }

  Terms terms(models::Gpt& model, const PairMicro& m, const torch::Tensor& reference) const {
    auto [chosen, rejected] = policy_logprobs(model, m);
    const torch::Tensor idx = torch::tensor(m.indices, torch::kLong);
    const torch::Tensor ref = reference.index_select(0, idx).to(chosen.device());  // [B, 2]
    return {rlhf::dpo_loss(chosen, rejected, ref.select(1, 0), ref.select(1, 1), options_), chosen, rejected};
  }

  // [N, 2] (chosen, rejected) reference log-probs of every pair, in fp32 with dropout off.
  torch::Tensor reference_logprobs(models::Gpt& model, const data::PreferenceDataset& data) const {
    torch::NoGradGuard no_grad;
    model->eval();
    torch::Tensor out = torch::zeros({static_cast<int64_t>(data.examples.size()), 2}, torch::kFloat32);
    data_.for_each_batch(data, 0, [&](const PairMicro& m) {
      auto [chosen, rejected] = policy_logprobs(model, m);
      const torch::Tensor idx = torch::tensor(m.indices, torch::kLong);
      out.index_copy_(0, idx, torch::stack({chosen, rejected}, 1).cpu());  // kept on the CPU, sliced per batch
    });
    model->train();
    return out;
  }

  const TrainingConfig& c_;
  PreferenceData data_;
  rlhf::DpoOptions options_;
  bool mean_ = false;
  torch::Tensor train_ref_, val_ref_;
};

int run_rm(const TrainingConfig& c, const std::string& yaml, const std::string& command_line) {
  ObjectiveFactory f;
  f.heads.reward = true;
  f.make = [](const TrainingConfig& cfg, models::Gpt& model, core::RunLog* log) -> std::unique_ptr<Objective> {
    return std::make_unique<RewardModelObjective>(cfg, model, log);
  };
  return run_training(c, yaml, command_line, f);
}

int run_dpo(const TrainingConfig& c, const std::string& yaml, const std::string& command_line) {
  ObjectiveFactory f;
  f.make = [](const TrainingConfig& cfg, models::Gpt& model, core::RunLog* log) -> std::unique_ptr<Objective> {
    return std::make_unique<DpoObjective>(cfg, model, log);
  };
  return run_training(c, yaml, command_line, f);
}

}  // namespace

ExperimentKind rm_kind() {
  return make_kind<TrainingConfig>("rm", "reward model (Bradley-Terry) on preference JSONL", run_rm);
}

ExperimentKind dpo_kind() {
  return make_kind<TrainingConfig>("dpo", "direct preference optimisation (DPO / IPO / cDPO) on preference JSONL",
                                   run_dpo);
}

}  // namespace troupe::experiments
