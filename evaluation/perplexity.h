// Perplexity of a token sequence longer than the model's context, with a sliding window (the method of Hugging
// Face's "Perplexity of fixed-length models"): windows of `window` tokens start every `stride` tokens; each token
// from position 1 on is scored exactly once, by the first window that reaches it, conditioned on the tokens of that
// window before it. stride = window is the non-overlapping evaluation (every window conditions only on its own
// tokens); a smaller stride gives each scored token at least window - stride tokens of context.
// (HF's tutorial counts one token too few per window when stride < window; here every token is counted once.)
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "models/gpt.h"

namespace troupe::evaluation {

struct PerplexityResult {
  double nll_sum = 0;  // sum of -log p(token | its window's context), nats
  int64_t tokens = 0;  // tokens scored
  int64_t windows = 0;
  double mean_nll() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
  double perplexity() const { return std::exp(mean_nll()); }
};

// ConfigError unless 1 <= stride <= window <= block_size; DataError for fewer than 2 tokens. Windows run
// `batch_size` at a time, in eval mode without gradients, on the model's device.
PerplexityResult sliding_window_perplexity(models::Gpt& model, const std::vector<int64_t>& ids, int64_t window,
                                           int64_t stride, int64_t batch_size = 8);

}  // namespace troupe::evaluation
