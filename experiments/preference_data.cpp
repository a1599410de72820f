// Implementation of experiments/preference_data.h.
#include "experiments/preference_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/config_binder.h"
#include "core/errors.h"
#include "core/seeding.h"
#include "data/chat_data.h"
#include "distributed/data_parallel.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {

PreferenceReading::PreferenceReading(const TrainingConfig& c, models::Gpt& model) {
  if (!c.data.tokenizer.empty()) {  // optional: pre-tokenised (*_ids) data needs none
    tokenizer.emplace(tokenizers::open_tokenizer(c.data.tokenizer, c.data.encoding));
    if (tokenizer->vocab_size() > model->config().vocab_size) {
      throw ConfigError("data.tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                        " ids but the model's vocab_size is " + std::to_string(model->config().vocab_size));
    }
    options.eos_id = data::eos_id_of(*tokenizer);
  }
  options.vocab_size = model->config().vocab_size;
  options.max_length = std::min(c.data.max_length, model->config().block_size);
  options.overlong = c.data.overlong;
  options.chat_template = data::load_chat_template(c.data.chat_template);
  pad_id = options.eos_id.value_or(0);
}

data::RankingDataset load_rankings(const TrainingConfig& c, const PreferenceReading& reading, const std::string& path,
                                   bool report, core::RunLog* log) {
  if (!reading.tokenizer) throw ConfigError("data.format rankings: data.tokenizer must be set (rankings are text)");
  data::RankingDataset r = data::load_ranking_jsonl(*reading.tokenizer, path, reading.options);
  if (!report) return r;
  const auto& s = r.stats;
  spdlog::info(
      "{} data: {} rankings ({} responses, {} comparisons; {} skipped, {} all tied, {} truncated, {} dropped), "
      "{} tokens",
      core::enum_name(c.kind), s.examples, r.responses, r.comparisons, r.skipped, r.all_tied, s.truncated, s.dropped,
      s.tokens);
  if (log != nullptr) {
    log->log_scalars(0, {{"data/rankings", static_cast<double>(s.examples)},
                         {"data/responses", static_cast<double>(r.responses)},
                         {"data/comparisons", static_cast<double>(r.comparisons)},
                         {"data/skipped", static_cast<double>(r.skipped)},
                         {"data/all_tied", static_cast<double>(r.all_tied)},
                         {"data/truncated", static_cast<double>(s.truncated)},
                         {"data/dropped", static_cast<double>(s.dropped)},
                         {"data/tokens", static_cast<double>(s.tokens)}});
  }
  return r;
}

ExampleFeed::ExampleFeed(const TrainingConfig& c, uint64_t n)
    : batch_size_(c.train.batch_size),
      shuffler_(std::make_unique<data::EpochShuffler>(n, c.train.batch_size,
                                                      core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0))) {}

std::vector<int64_t> ExampleFeed::next(int rank, int world, bool& reached) {
  const std::vector<int64_t> global = shuffler_->next();
  const auto rows = distributed::shard_rows(batch_size_, rank, world);
  const auto from = std::min<size_t>(global.size(), static_cast<size_t>(rows.begin));
  const auto to = std::min<size_t>(global.size(), static_cast<size_t>(rows.end));
  std::vector<int64_t> mine(global.begin() + static_cast<std::ptrdiff_t>(from),
                            global.begin() + static_cast<std::ptrdiff_t>(to));
  reached = !mine.empty();
  if (!reached) mine.push_back(global.front());
  return mine;
}

std::map<std::string, double> record_reward_statistics(const std::vector<torch::Tensor>& rewards,
                                                       core::CheckpointState& final_state) {
  const torch::Tensor r = torch::cat(rewards).to(torch::kCPU, torch::kFloat64);
  const double mean = r.mean().item<double>();
  const double std = r.std(/*unbiased=*/false).item<double>();
  final_state.extra["reward.mean"] = mean;
  final_state.extra["reward.std"] = std;
  spdlog::info("reward over {} training responses: mean {:.4f}, std {:.4f}", r.numel(), mean, std);
  return {{"rm/reward_mean", mean}, {"rm/reward_std", std}};
}

}  // namespace troupe::experiments
