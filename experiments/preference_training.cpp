// Implementation of experiments/preference_training.h: the rm and dpo objectives.
#include "experiments/preference_training.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"
#include "data/text_datasets.h"
#include "experiments/preference_data.h"
#include "experiments/ranking_training.h"
#include "experiments/trainer.h"
#include "rlhf/preference_losses.h"

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

// The train/val pairs (from a pairs file, or the pairs data.ranking_pairs takes from a rankings file), the seeded
// feed and this rank's rows.
class PreferenceData {
 public:
  PreferenceData(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c), reading_(c, model) {
    train_ = load(c.data.train, true, log);
    if (!c.data.val.empty()) val_ = load(c.data.val, false, nullptr);
    feed_ = std::make_unique<ExampleFeed>(c, train_.examples.size());
  }

  // This rank's rows of the next global batch (ExampleFeed::next); units 0 when that batch does not reach this rank
  // (one pair is kept for shapes and weighted 0 by the caller).
  std::unique_ptr<PairMicro> next(int rank, int world) {
    bool reached = true;
    const std::vector<int64_t> mine = feed_->next(rank, world, reached);
    auto m = std::make_unique<PairMicro>(collate_pairs(train_, mine, reading_.pad_id));
    if (!reached) m->units = 0;
    return m;
  }

  // Batches over a whole dataset in order (evaluation, reference log-probs, reward statistics).
  template <class F>
  void for_each_batch(const data::PreferenceDataset& data, int64_t max_batches, F&& f) const {
    feed_->for_each_batch(data.examples.size(), max_batches,
                          [&](const std::vector<int64_t>& idx) { f(collate_pairs(data, idx, reading_.pad_id)); });
  }

  const data::PreferenceDataset& train() const { return train_; }
  const data::PreferenceDataset& val() const { return val_; }
  bool has_val() const { return !c_.data.val.empty(); }
  std::vector<int64_t> state() const { return feed_->state(); }
  void restore(const std::vector<int64_t>& s) { feed_->restore(s); }

 private:
  // Reads one file; the training file's counts are reported (`report`) and logged (when `log` is not null).
  data::PreferenceDataset load(const std::string& path, bool report, core::RunLog* log) const {
    if (c_.data.format == data::PreferenceFormat::kRankings) return load_ranking_pairs(path, report, log);
    data::PreferenceDataset d = data::load_preference_jsonl(reading_.tok(), path, reading_.options);
    if (!report) return d;
    const auto& s = d.stats;
    spdlog::info("{} data: {} pairs ({} truncated, {} dropped), {} tokens", core::enum_name(c_.kind), s.examples,
                 s.truncated, s.dropped, s.tokens);
    if (log != nullptr) {
      log->log_scalars(0, {{"data/pairs", static_cast<double>(s.examples)},
                           {"data/truncated", static_cast<double>(s.truncated)},
                           {"data/dropped", static_cast<double>(s.dropped)},
                           {"data/tokens", static_cast<double>(s.tokens)}});
    }
    return d;
  }

  // The pairs data.ranking_pairs takes from a rankings file (each ranking's prompt copied into its pairs).
  data::PreferenceDataset load_ranking_pairs(const std::string& path, bool report, core::RunLog* log) const {
    const data::RankingDataset r = load_rankings(c_, reading_, path, report, log);
    data::PreferenceDataset d = data::expand_rankings(r, c_.data.ranking_pairs);
    if (!report) return d;
    spdlog::info("{} data: {} pairs from the rankings (data.ranking_pairs {}), {} tokens", core::enum_name(c_.kind),
                 d.stats.examples, core::enum_name(c_.data.ranking_pairs), d.stats.tokens);
    if (log != nullptr) log->log_scalars(0, {{"data/pairs", static_cast<double>(d.stats.examples)}});
    return d;
  }

  const TrainingConfig& c_;
  PreferenceReading reading_;
  data::PreferenceDataset train_, val_;
  std::unique_ptr<ExampleFeed> feed_;
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
    return record_reward_statistics(all, final_state);
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
    if (cfg.data.format == data::PreferenceFormat::kRankings) return make_ranking_rm_objective(cfg, model, log);
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
