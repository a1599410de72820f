// `troupe bench decode`: batch-1 decode tokens/s with and without the KV cache at a given context, on a randomly
// initialised GPT (speed does not depend on the weights). The peer is the same model without the cache, in the
// same run; the ratio is the KV cache's speed-up. A cached step must read every weight and the cache once, so it
// is also compared with the memory-bandwidth bound: read bandwidth (a streaming sum over 1 GiB, best of 5, same
// threads) / bytes per token.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "models/generation.h"

namespace troupe::bench {

namespace {

// Read bandwidth in bytes/s: the best of 5 sums over a 1 GiB fp32 tensor (streams from memory, not cache) on
// `device` (item() waits for a GPU's sum).
double read_bandwidth(const torch::Device& device) {
  const torch::Tensor x = torch::ones({int64_t{1} << 28}, torch::TensorOptions().device(device));
  (void)x.sum().item<double>();  // first touch and kernel warm-up
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const double s = x.sum().item<double>();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > 0) best = std::max(best, static_cast<double>(x.nbytes()) / secs);
  }
  return best;
}

struct DecodeArgs {
  int64_t n_layer = 12, n_head = 12, n_embd = 768, vocab = 50257;  // GPT-2 small (124M)
  int64_t context = 256;                                           // prompt + new tokens
  int64_t new_tokens = 32;
  int repeats = 3;
  int threads = 1;
  double min_speedup = 0;
  std::string device = "auto";
};

int run_decode(const DecodeArgs& a) {
  if (a.new_tokens < 1 || a.new_tokens >= a.context) throw ConfigError("--new-tokens must be in [1, context)");
  const int threads = core::set_threads(a.threads);
  const torch::Device device = core::resolve_device(a.device, core::local_rank(), "--device");
  models::GptConfig c;
  c.n_layer = a.n_layer;
  c.n_head = a.n_head;
  c.n_embd = a.n_embd;
  c.vocab_size = a.vocab;
  c.block_size = a.context;
  torch::manual_seed(0);
  models::Gpt model(c);
  model->to(device);  // generate() keeps the KV cache on the model's device; each token is read back (a sync)
  const int64_t prompt_len = a.context - a.new_tokens;
  std::vector<int64_t> prompt(static_cast<size_t>(prompt_len));
  for (int64_t i = 0; i < prompt_len; ++i) prompt[static_cast<size_t>(i)] = (i * 7919) % a.vocab;
  models::GenerationConfig g;
  g.max_new_tokens = a.new_tokens;
  std::cout << fmt::format(
      "decode: GPT n_layer {} n_head {} n_embd {} vocab {} ({:.1f}M params), batch 1, prompt {} "
      "+ {} new tokens = context {}, {} thread(s), median of {}; ATen CPU kernels {}, device {}\n",
      c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.parameter_count() / 1e6, prompt_len, a.new_tokens, a.context,
      threads, a.repeats, core::torch_info().cpu_capability, device.str());
  // Decode time = time(prompt + new_tokens) - time(prompt + 1 token): the prompt's forward pass (prefill) and the
  // first token are the same work in both modes and are left out.
  std::vector<int64_t> tokens_cached;
  double tps[2] = {0, 0};
  auto timed = [&](int64_t n, bool cache, std::vector<int64_t>* tokens) {
    models::GenerationConfig gg = g;
    gg.max_new_tokens = n;
    gg.use_cache = cache;
    const auto start = std::chrono::steady_clock::now();
    const auto out = models::generate(model, {prompt}, gg);
    if (tokens != nullptr) *tokens = out.tokens[0];
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int mode = 0; mode < 2; ++mode) {
    const bool cache = mode == 0;
    std::vector<int64_t> tokens;
    timed(a.new_tokens, cache, &tokens);  // warm-up, and the tokens to compare
    if (mode == 0) tokens_cached = tokens;
    if (mode == 1 && tokens != tokens_cached) throw Error("decode bench: cache and no-cache tokens differ");
    std::vector<double> times;
    for (int r = 0; r < a.repeats; ++r) times.push_back(timed(a.new_tokens, cache, nullptr) - timed(1, cache, nullptr));
    const double s = median(times);
    tps[mode] = static_cast<double>(a.new_tokens - 1) / s;
    std::cout << fmt::format("  {:<10} {:>9.1f} tokens/s  ({:.3f} s for {} decode steps)\n",
                             cache ? "KV cache" : "no cache", tps[mode], s, a.new_tokens - 1);
  }
  const double speedup = tps[0] / tps[1];
  std::cout << fmt::format("  KV-cache speed-up: {:.1f}x (goal >= 10x); identical tokens\n", speedup);
  // Bytes a cached step reads: every weight (fp32; the tied LM head once) and the K/V cache at the mean context.
  double weight_bytes = 0;
  for (const auto& p : model->parameters()) weight_bytes += static_cast<double>(p.nbytes());
  const double kv_bytes = 2.0 * c.n_layer * c.n_embd * 4.0 * (prompt_len + a.new_tokens / 2.0);
  const double bandwidth = read_bandwidth(device);
  const double bound = bandwidth / (weight_bytes + kv_bytes);
  std::cout << fmt::format(
      "  memory-bandwidth bound: read bandwidth {:.1f} GB/s / {:.1f} MB per token (fp32 weights "
      "{:.1f} MB + KV cache {:.1f} MB) = {:.1f} tokens/s; KV-cache decode reaches {:.0f}% of it "
      "(goal >= 50%)\n",
      bandwidth / 1e9, (weight_bytes + kv_bytes) / 1e6, weight_bytes / 1e6, kv_bytes / 1e6, bound,
      100.0 * tps[0] / bound);
  return a.min_speedup > 0 && speedup < a.min_speedup ? 1 : 0;
}

}  // namespace

void add_bench_decode_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<DecodeArgs>();
  auto* cmd = bench.add_subcommand("decode", "Batch-1 decode tokens/s with vs without the KV cache");
  cmd->add_option("--n-layer", args->n_layer)->capture_default_str();
  cmd->add_option("--n-head", args->n_head)->capture_default_str();
  cmd->add_option("--n-embd", args->n_embd)->capture_default_str();
  cmd->add_option("--vocab", args->vocab)->capture_default_str();
  cmd->add_option("--context", args->context, "prompt + new tokens")->capture_default_str();
  cmd->add_option("--new-tokens", args->new_tokens, "tokens decoded and timed")->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "timed runs (median)")->capture_default_str();
  cmd->add_option("--threads", args->threads, "torch threads (0 = all)")->capture_default_str();
  cmd->add_option("--min-speedup", args->min_speedup, "exit 1 below this KV-cache speed-up");
  cli::add_device_option(cmd, args->device);
  cmd->callback([args, &exit_code] { exit_code = run_decode(*args); });
}

}  // namespace troupe::bench
