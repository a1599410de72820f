// `troupe bench decode`: batch-1 decode tokens/s with and without the KV cache at a given context, on a randomly
// initialised GPT (speed does not depend on the weights). The peer is the same model without the cache, in the
// same run; the ratio is the KV cache's speed-up.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "models/generation.h"

namespace troupe::cli {

namespace {

struct DecodeArgs {
  int64_t n_layer = 12, n_head = 12, n_embd = 768, vocab = 50257;  // GPT-2 small (124M)
  int64_t context = 256;  // prompt + new tokens
  int64_t new_tokens = 32;
  int repeats = 3;
  int threads = 1;
  double min_speedup = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

int run_decode(const DecodeArgs& a) {
  if (a.new_tokens < 1 || a.new_tokens >= a.context) throw ConfigError("--new-tokens must be in [1, context)");
  const int threads = core::set_threads(a.threads);
  models::GptConfig c;
  c.n_layer = a.n_layer;
  c.n_head = a.n_head;
  c.n_embd = a.n_embd;
  c.vocab_size = a.vocab;
  c.block_size = a.context;
  torch::manual_seed(0);
  models::Gpt model(c);
  const int64_t prompt_len = a.context - a.new_tokens;
  std::vector<int64_t> prompt(static_cast<size_t>(prompt_len));
  for (int64_t i = 0; i < prompt_len; ++i) prompt[static_cast<size_t>(i)] = (i * 7919) % a.vocab;
  models::GenerationConfig g;
  g.max_new_tokens = a.new_tokens;
  std::cout << fmt::format("decode: GPT n_layer {} n_head {} n_embd {} vocab {} ({:.1f}M params), batch 1, prompt {} "
                           "+ {} new tokens = context {}, {} thread(s), median of {}; OPENBLAS_CORETYPE {}\n",
                           c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.parameter_count() / 1e6, prompt_len,
                           a.new_tokens, a.context, threads, a.repeats,
                           std::getenv("OPENBLAS_CORETYPE") ? "set" : "unset");
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
    std::cout << fmt::format("  {:<10} {:>9.1f} tokens/s  ({:.3f} s for {} decode steps)\n", cache ? "KV cache" : "no cache",
                             tps[mode], s, a.new_tokens - 1);
  }
  const double speedup = tps[0] / tps[1];
  std::cout << fmt::format("  KV-cache speed-up: {:.1f}x (goal >= 10x); identical tokens\n", speedup);
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
  cmd->callback([args, &exit_code] { exit_code = run_decode(*args); });
}

}  // namespace troupe::cli
