// What the preference objectives (experiments/preference_training.h, experiments/ranking_training.h) share about
// their data: the tokenizer and dataset options a config asks for, and a seeded, resumable feed of example indices
// that gives each data-parallel rank its share of every global batch. Not a dataset format (data/), not a loss.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/run_log.h"
#include "data/ranking_data.h"
#include "data/text_datasets.h"
#include "experiments/trainer.h"
#include "tokenizers/bpe_tokenizer.h"

namespace troupe::experiments {

// The tokenizer (data.tokenizer; none for pre-tokenised pairs) and the options every preference file is read with.
struct PreferenceReading {
  std::optional<tokenizers::BpeTokenizer> tokenizer;
  data::TextDatasetOptions options;
  int64_t pad_id = 0;  // the EOS id when the tokenizer has one, else 0

  // ConfigError when the tokenizer has more ids than the model's vocabulary.
  PreferenceReading(const TrainingConfig& c, models::Gpt& model);
  const tokenizers::BpeTokenizer* tok() const { return tokenizer ? &*tokenizer : nullptr; }
};

// Reads a rankings file (data/ranking_data.h) with `reading`'s tokenizer and options. `report`: print its counts
// ("<kind> data: R rankings (N responses, C comparisons; S skipped, T all tied, ...)") and log them as data/<count>
// at step 0 when `log` is not null. ConfigError when there is no tokenizer.
data::RankingDataset load_rankings(const TrainingConfig& c, const PreferenceReading& reading, const std::string& path,
                                   bool report, core::RunLog* log);

// Indices of n examples, train.batch_size per global batch, in an order that depends only on the seed
// (data::EpochShuffler), so data_state() / restore() resume exactly.
class ExampleFeed {
 public:
  ExampleFeed(const TrainingConfig& c, uint64_t n);

  // This rank's indices of the next global batch: rows distributed::shard_rows(train.batch_size) of it, cut at the
  // end of a shorter last batch. `reached` is false when that batch does not reach this rank; one index is then kept
  // for shapes, and the caller gives it weight 0.
  std::vector<int64_t> next(int rank, int world, bool& reached);
  // The n examples in order, train.batch_size at a time (at most max_batches batches; 0 = all).
  template <class F>
  void for_each_batch(uint64_t n, int64_t max_batches, F&& f) const {
    const auto total = static_cast<int64_t>(n);
    int64_t batches = 0;
    for (int64_t at = 0; at < total && (max_batches == 0 || batches < max_batches); at += batch_size_, ++batches) {
      std::vector<int64_t> idx;
      for (int64_t i = at; i < std::min(total, at + batch_size_); ++i) idx.push_back(i);
      f(idx);
    }
  }
  std::vector<int64_t> state() const { return shuffler_->state().to_vector(); }
  void restore(const std::vector<int64_t>& s) { shuffler_->restore(data::ShuffleState::from_vector(s)); }

 private:
  int64_t batch_size_;
  std::unique_ptr<data::EpochShuffler> shuffler_;
};

// The reward model's mean and (population) std over every training response's reward (`rewards`: 1-D tensors), for
// reward normalisation in PPO: stored in the final checkpoint (reward.mean, reward.std), logged, and returned as the
// metrics rm/reward_mean and rm/reward_std. Shared by the pairwise and the ranking reward models.
std::map<std::string, double> record_reward_statistics(const std::vector<torch::Tensor>& rewards,
                                                       core::CheckpointState& final_state);

}  // namespace troupe::experiments
