// Implementation of experiments/ranking_training.h.
#include "experiments/ranking_training.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/ranking_data.h"
#include "data/text_datasets.h"
#include "experiments/preference_data.h"
#include "rlhf/preference_losses.h"

namespace troupe::experiments {
namespace {

// B rankings as one forward pass: every real response (prompt + response) is a row; its reward lands in the (B, K)
// grid at slot b * K + k, K being the largest ranking of the batch, and the padding slots are masked out.
struct RankingMicro : MicroBatch {
  torch::Tensor ids, mask;  // [N, L] N = Σ_b K_b rows, right-padded
  torch::Tensor slot;       // [N] int64 b * K + k of each row
  torch::Tensor ranks;      // [B, K] int64, 0 on padding
  torch::Tensor real;       // [B, K] bool, true on real responses
  int64_t prompts = 0;      // B
};

RankingMicro collate_rankings(const data::RankingDataset& data, const std::vector<int64_t>& indices, int64_t pad_id) {
  std::vector<const data::RankingExample*> batch;
  size_t K = 0;
  for (int64_t i : indices) {
    batch.push_back(&data.examples[static_cast<size_t>(i)]);
    K = std::max(K, batch.back()->responses.size());
  }
  const auto B = static_cast<int64_t>(batch.size());
  std::vector<int64_t> ranks(static_cast<size_t>(B) * K, 0);
  std::vector<uint8_t> real(static_cast<size_t>(B) * K, 0);
  std::vector<data::SftExample> rows;
  std::vector<int64_t> slots;
  for (int64_t b = 0; b < B; ++b) {
    const data::RankingExample& ex = *batch[static_cast<size_t>(b)];
    for (size_t k = 0; k < ex.responses.size(); ++k) {
      const size_t at = static_cast<size_t>(b) * K + k;
      rows.push_back({ex.prompt, ex.responses[k], {}});
      slots.push_back(static_cast<int64_t>(at));
      ranks[at] = ex.ranks[k];
      real[at] = 1;
    }
  }
  RankingMicro m;
  m.ranks = torch::tensor(ranks, torch::kInt64).view({B, static_cast<int64_t>(K)});
  m.real = torch::tensor(std::vector<int64_t>(real.begin(), real.end()), torch::kInt64)
               .view({B, static_cast<int64_t>(K)})
               .to(torch::kBool);
  const data::TextBatch t = data::collate_sft(rows, pad_id);  // labels unused: the reward is read at the last token
  m.ids = t.input_ids;
  m.mask = t.attention_mask;
  m.slot = torch::tensor(slots, torch::kInt64);
  m.prompts = B;
  m.units = B;  // every kept ranking has a comparison (data/ranking_data.h leaves all-tied ones out)
  return m;
}

// The (B, K) reward grid (0 on padding) and the [N] rewards of the rows, float32.
std::pair<torch::Tensor, torch::Tensor> score(models::Gpt& model, const RankingMicro& m) {
  models::GptInput in;
  in.ids = m.ids;
  in.attention_mask = m.mask;
  const torch::Tensor r = model->reward(model->hidden(in), m.mask).to(torch::kFloat32);  // [N]
  const torch::Tensor grid = torch::zeros({m.ranks.numel()}, r.options())
                                 .index_copy(0, m.slot.to(r.device()), r)
                                 .view(m.ranks.sizes());  // (B, K)
  return {grid, r};
}

rlhf::RankingLossOut loss_of(models::Gpt& model, const RankingMicro& m) {
  const torch::Tensor grid = score(model, m).first;
  return rlhf::ranking_loss(grid, m.ranks.to(grid.device()), m.real.to(grid.device()));
}

class RankingRewardObjective final : public Objective {
 public:
  RankingRewardObjective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) : c_(c), reading_(c, model) {
    train_ = load_rankings(c, reading_, c.data.train, true, log);
    if (!c.data.val.empty()) val_ = load_rankings(c, reading_, c.data.val, false, nullptr);
    feed_ = std::make_unique<ExampleFeed>(c, train_.examples.size());
  }
  const char* unit_name() const override { return "rankings"; }

  std::unique_ptr<MicroBatch> next(int rank, int world) override {
    bool reached = true;
    const std::vector<int64_t> mine = feed_->next(rank, world, reached);
    auto m = std::make_unique<RankingMicro>(collate_rankings(train_, mine, reading_.pad_id));
    if (!reached) m->units = 0;  // a placeholder ranking for shapes, weighted 0
    return m;
  }

  // Sums over rankings: the loss; correct pairs and comparisons, turned into an accuracy by finish_step_metrics.
  LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) override {
    const auto& m = static_cast<const RankingMicro&>(batch);
    const rlhf::RankingLossOut out = loss_of(model, m);
    const double w = m.units == 0 ? 0.0 : 1.0;
    return {out.per_prompt.sum() * w,
            {{"train/accuracy", w * static_cast<double>(out.correct.sum().item<int64_t>())},
             {"train/comparisons", w * static_cast<double>(out.pairs.sum().item<int64_t>())}}};
  }

  // In: each metric's sum over the global batch / its rankings. Out: accuracy = correct / comparisons (over the
  // non-tied pairs), comparisons = their number in the global batch.
  void finish_step_metrics(std::map<std::string, double>& m, int64_t units) const override {
    const double comparisons = m["train/comparisons"];
    m["train/accuracy"] = comparisons > 0 ? m["train/accuracy"] / comparisons : 0.0;
    m["train/comparisons"] = std::round(comparisons * static_cast<double>(std::max<int64_t>(units, 1)));
  }

  std::map<std::string, double> evaluate(models::Gpt& model) override {
    if (c_.data.val.empty()) return {};
    double loss = 0, correct = 0, pairs = 0;
    int64_t prompts = 0;
    feed_->for_each_batch(val_.examples.size(), c_.train.eval_batches, [&](const std::vector<int64_t>& idx) {
      const rlhf::RankingLossOut out = loss_of(model, collate_rankings(val_, idx, reading_.pad_id));
      loss += out.per_prompt.sum().item<double>();
      correct += static_cast<double>(out.correct.sum().item<int64_t>());
      pairs += static_cast<double>(out.pairs.sum().item<int64_t>());
      prompts += static_cast<int64_t>(idx.size());
    });
    return {{"eval/loss", loss / static_cast<double>(std::max<int64_t>(prompts, 1))},
            {"eval/accuracy", correct / std::max(pairs, 1.0)},
            {"eval/comparisons", pairs}};
  }

  // Mean and std of the reward over every training response, for normalisation (as the pairwise reward model).
  std::map<std::string, double> finish(models::Gpt& model, core::CheckpointState& final_state) override {
    torch::NoGradGuard no_grad;
    model->eval();
    std::vector<torch::Tensor> all;
    feed_->for_each_batch(train_.examples.size(), 0, [&](const std::vector<int64_t>& idx) {
      all.push_back(score(model, collate_rankings(train_, idx, reading_.pad_id)).second);
    });
    model->train();
    return record_reward_statistics(all, final_state);
  }

  std::vector<int64_t> data_state() const override { return feed_->state(); }
  void restore_data(const std::vector<int64_t>& s) override { feed_->restore(s); }
  bool export_hf() const override { return false; }  // the reward head has no Hugging Face GPT-2 counterpart

 private:
  const TrainingConfig& c_;
  PreferenceReading reading_;
  data::RankingDataset train_, val_;
  std::unique_ptr<ExampleFeed> feed_;
};

}  // namespace

std::unique_ptr<Objective> make_ranking_rm_objective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log) {
  return std::make_unique<RankingRewardObjective>(c, model, log);
}

}  // namespace troupe::experiments
