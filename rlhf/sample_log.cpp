// Implementation of rlhf/sample_log.h.
#include "rlhf/sample_log.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

namespace troupe::rlhf {
namespace {

std::string as_text(const std::vector<int>& ids, const tokenizers::BpeTokenizer* tok) {
  if (tok != nullptr) return tok->decode_lossy_utf8(ids);
  std::string out = "ids:";
  for (int id : ids) out += " " + std::to_string(id);
  return out;
}

// The ids of `tokens` ([L] int64) where `mask` ([L]) is set, in order.
std::vector<int> masked_ids(const torch::Tensor& tokens, const torch::Tensor& mask) {
  const torch::Tensor t = tokens.to(torch::kCPU, torch::kInt64).contiguous();  // [L]
  const torch::Tensor m = mask.to(torch::kCPU, torch::kFloat32).contiguous();  // [L]
  std::vector<int> ids;
  const auto* tp = t.data_ptr<int64_t>();
  const auto* mp = m.data_ptr<float>();
  for (int64_t i = 0; i < t.size(0); ++i)
    if (mp[i] > 0) ids.push_back(static_cast<int>(tp[i]));
  return ids;
}

}  // namespace

std::string prompt_text(const Rollout& rollout, int64_t row, const tokenizers::BpeTokenizer* tok) {
  const int64_t P = rollout.prompt_length;
  return as_text(masked_ids(rollout.sequences[row].slice(0, 0, P), rollout.attention_mask[row].slice(0, 0, P)), tok);
}

std::string completion_text(const Rollout& rollout, int64_t row, const tokenizers::BpeTokenizer* tok) {
  const int64_t P = rollout.prompt_length;
  return as_text(masked_ids(rollout.sequences[row].slice(0, P), rollout.response_mask[row]), tok);
}

void log_samples(core::RunLog& log, int64_t step, const Rollout& rollout, const at::Tensor& scores,
                 const at::Tensor& raw, const tokenizers::BpeTokenizer* tok, int64_t count) {
  const int64_t n = std::min(count, rollout.size());
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64);  // [B]
  const torch::Tensor r = raw.to(torch::kCPU, torch::kFloat64);     // [B]
  for (int64_t i = 0; i < n; ++i) {
    log.log_table_row("samples", step,
                      {{"prompt", prompt_text(rollout, i, tok)},
                       {"completion", completion_text(rollout, i, tok)},
                       {"reward", fmt::format("{:.6g}", s[i].item<double>())},
                       {"raw_reward", fmt::format("{:.6g}", r[i].item<double>())}});
  }
}

}  // namespace troupe::rlhf
