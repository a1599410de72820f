// Sampled completions into the run log: the first rows of each iteration's scored rollout as rows of the log's
// "samples" table (what `troupe dashboard` shows per iteration). Deterministic and cheap (a few rows, no RNG).
// Not an evaluation: the rows are training rollouts, with the reward they were trained on.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "core/run_log.h"
#include "rlhf/rollout.h"
#include "tokenizers/bpe_tokenizer.h"

namespace troupe::rlhf {

// The real prompt and response ids of row `row` of `rollout` as text: decoded with `tok` (invalid UTF-8 replaced by
// U+FFFD), or "ids: 12 34 56" when there is no tokenizer (synthetic prompts).
std::string prompt_text(const Rollout& rollout, int64_t row, const tokenizers::BpeTokenizer* tok);
std::string completion_text(const Rollout& rollout, int64_t row, const tokenizers::BpeTokenizer* tok);

// Logs rows 0 .. min(count, B)-1 of `rollout` at `step` into table "samples": columns prompt, completion, reward
// (scores [B], what the update used) and raw_reward (raw [B], before shaping), rewards as "%.6g".
void log_samples(core::RunLog& log, int64_t step, const Rollout& rollout, const at::Tensor& scores,
                 const at::Tensor& raw, const tokenizers::BpeTokenizer* tok, int64_t count);

}  // namespace troupe::rlhf
