#include "evaluation/perplexity.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/errors.h"

namespace troupe::evaluation {

PerplexityResult sliding_window_perplexity(models::Gpt& model, const std::vector<int64_t>& ids, int64_t window,
                                           int64_t stride, int64_t batch_size) {
  const int64_t block = model->config().block_size;
  if (window < 2 || window > block) {
    throw ConfigError(
        fmt::format("perplexity: window must be in [2, {}] (the model's positions), got {}", block, window));
  }
  if (stride < 1 || stride > window) {
    throw ConfigError(fmt::format("perplexity: stride must be in [1, window = {}], got {}", window, stride));
  }
  if (batch_size < 1) throw ConfigError(fmt::format("perplexity: batch_size must be >= 1, got {}", batch_size));
  const auto n = static_cast<int64_t>(ids.size());
  if (n < 2) throw DataError(fmt::format("perplexity: need at least 2 tokens, got {}", n));

  // Window [begin, end) scores the tokens at [max(previous end, begin + 1), end).
  struct Window {
    int64_t begin, end, first_scored;
  };
  std::vector<Window> windows;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + window, n);
    windows.push_back({begin, end, std::max(prev_end, begin + 1)});
    prev_end = end;
    if (end == n) break;
  }

  PerplexityResult out;
  out.windows = static_cast<int64_t>(windows.size());
  const torch::Device device = model->device();
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  constexpr int64_t kIgnore = -100;
  for (size_t start = 0; start < windows.size(); start += static_cast<size_t>(batch_size)) {
    const size_t stop = std::min(windows.size(), start + static_cast<size_t>(batch_size));
    int64_t len = 0;
    for (size_t w = start; w < stop; ++w) len = std::max(len, windows[w].end - windows[w].begin - 1);
    const auto rows = static_cast<int64_t>(stop - start);
    torch::Tensor input = torch::zeros({rows, len}, torch::kLong);
    torch::Tensor targets = torch::full({rows, len}, kIgnore, torch::kLong);
    auto in_a = input.accessor<int64_t, 2>();
    auto tg_a = targets.accessor<int64_t, 2>();
    for (int64_t r = 0; r < rows; ++r) {
      const Window& w = windows[start + static_cast<size_t>(r)];
      for (int64_t t = 0; t < w.end - w.begin - 1; ++t) {
        in_a[r][t] = ids[static_cast<size_t>(w.begin + t)];
        const int64_t target_pos = w.begin + t + 1;
        if (target_pos >= w.first_scored) tg_a[r][t] = ids[static_cast<size_t>(target_pos)];
      }
      out.tokens += w.end - w.first_scored;
    }
    models::GptInput in;
    in.ids = input.to(device);
    const torch::Tensor hidden = model->hidden(in);
    out.nll_sum += model->lm_loss_sum(hidden, targets.to(device), kIgnore).item<double>();
  }
  if (was_training) model->train();
  return out;
}

}  // namespace troupe::evaluation
