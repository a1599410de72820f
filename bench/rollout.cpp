// `troupe bench rollout`: RL-rollout throughput of the rollout engine (models/engine.h) — P prompts x G samples x N
// new tokens, sampled, no stop tokens — against Troupe's per-batch generation (models::generate on all P x G rows,
// as the rollout roles called it before the engine) in the same run, the KV-cache memory with and without prefix
// sharing, and batch-1 decode tokens/s of both. The llama.cpp peer runs from bench/rollout.sh on the same model.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "bench/commands.h"
#include "bench/stats.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "models/engine.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"

namespace troupe::bench {

namespace {

struct RolloutArgs {
  std::string model;  // HF directory or Troupe checkpoint; empty = a random llama of the shape below
  int64_t n_layer = 4, n_head = 8, n_kv_head = 2, n_embd = 256, intermediate = 704, vocab = 8192;
  int64_t prompts = 64, samples = 8, prompt_len = 32, new_tokens = 128;
  int repeats = 3;
  int threads = 2;
  bool skip_generate = false;
  std::string save;  // write the model as a Hugging Face directory and stop (for the llama.cpp peer)
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

models::Gpt make_model(const RolloutArgs& a) {
  if (!a.model.empty()) return models::load_pretrained_gpt(a.model);
  models::GptConfig c;
  c.arch = models::Arch::kLlama;
  c.n_layer = a.n_layer, c.n_head = a.n_head, c.n_kv_head = a.n_kv_head, c.n_embd = a.n_embd;
  c.intermediate_size = a.intermediate, c.vocab_size = a.vocab, c.block_size = a.prompt_len + a.new_tokens;
  c.tie_embeddings = false;
  torch::manual_seed(0);
  return models::Gpt(c);
}

std::vector<models::RolloutRequest> requests(const RolloutArgs& a, int64_t vocab) {
  std::vector<models::RolloutRequest> out;
  for (int64_t p = 0; p < a.prompts; ++p) {
    models::RolloutRequest r;
    for (int64_t i = 0; i < a.prompt_len; ++i) r.prompt.push_back((p * 7919 + i * 104729 + 1) % vocab);
    r.params.do_sample = true;
    r.params.max_new_tokens = a.new_tokens;
    r.seeds.clear();
    for (int64_t s = 0; s < a.samples; ++s) r.seeds.push_back(static_cast<uint64_t>(p * a.samples + s));
    out.push_back(std::move(r));
  }
  return out;
}

// Median seconds of `repeats` runs of f.
template <class F>
double timed(int repeats, F&& f) {
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(seconds_since(start));
  }
  return median(times);
}

int run_rollout(const RolloutArgs& a) {
  const int threads = core::set_threads(a.threads);
  models::Gpt model = make_model(a);
  model->eval();
  if (!a.save.empty()) {
    models::save_hf_model(a.save, model);
    std::cout << "rollout: model written to " << a.save << "\n";
    return 0;
  }
  const models::GptConfig& c = model->config();
  const auto reqs = requests(a, c.vocab_size);
  const double rows = static_cast<double>(a.prompts * a.samples), generated = rows * static_cast<double>(a.new_tokens);
  std::cout << fmt::format(
      "rollout: {} n_layer {} n_head {} kv {} n_embd {} mlp {} vocab {} ({:.1f}M params); {} prompts x {} samples x "
      "{} new tokens (prompt {}), sampled, {} thread(s), median of {}\n",
      c.llama() ? "llama" : "gpt2", c.n_layer, c.n_head, c.kv_heads(), c.n_embd, c.mlp_width(), c.vocab_size,
      c.parameter_count() / 1e6, a.prompts, a.samples, a.new_tokens, a.prompt_len, threads, a.repeats);
  models::RolloutEngine engine(model);
  // The engine and the simple loop's per-batch generation alternate, `repeats` times each, so that a slow spell of
  // the machine weighs on both; the medians are compared.
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& r : reqs)
    for (int64_t s = 0; s < a.samples; ++s) prompts.push_back(r.prompt);
  models::GenerationConfig g;
  g.do_sample = true;
  g.max_new_tokens = a.new_tokens;
  g.engine = models::GenerationEngine::kSimple;  // the padded-batch loop the roles ran before the engine
  std::vector<double> engine_times, gen_times;
  for (int r = 0; r < a.repeats; ++r) {
    engine_times.push_back(timed(1, [&] { engine.run(reqs); }));
    if (!a.skip_generate) gen_times.push_back(timed(1, [&] { models::generate(model, prompts, g); }));
  }
  const double engine_s = median(engine_times);
  const int64_t shared_bytes = engine.stats().peak_kv_bytes();
  models::EngineOptions no_sharing;
  no_sharing.prefix_sharing = false;
  models::RolloutEngine separate(model, no_sharing);
  const double separate_s = timed(1, [&] { separate.run(reqs); });
  const int64_t separate_bytes = separate.stats().peak_kv_bytes();
  std::cout << fmt::format("  engine, prefix sharing     {:>9.1f} tokens/s  ({:.2f} s)  peak KV {:.1f} MB\n",
                           generated / engine_s, engine_s, shared_bytes / 1e6);
  std::cout << fmt::format("  engine, no sharing         {:>9.1f} tokens/s  ({:.2f} s)  peak KV {:.1f} MB\n",
                           generated / separate_s, separate_s, separate_bytes / 1e6);
  models::EngineOptions bf16_options;
  bf16_options.bf16_weights = true;
  models::RolloutEngine bf16(model, bf16_options);
  const double bf16_s = timed(a.repeats, [&] { bf16.run(reqs); });
  std::cout << fmt::format("  engine, bf16 weights       {:>9.1f} tokens/s  ({:.2f} s)\n", generated / bf16_s, bf16_s);
  std::cout << fmt::format("  KV memory with sharing / without (G = {}): {:.3f}\n", a.samples,
                           static_cast<double>(shared_bytes) / static_cast<double>(separate_bytes));
  if (!a.skip_generate) {
    const double gen_s = median(gen_times);
    std::cout << fmt::format("  models::generate, 1 batch  {:>9.1f} tokens/s  ({:.2f} s)\n", generated / gen_s, gen_s);
    std::string each;
    for (size_t r = 0; r < gen_times.size(); ++r)
      each += fmt::format("{}{:.2f}", r == 0 ? "" : ", ", gen_times[r] / engine_times[r]);
    std::cout << fmt::format("  engine / per-batch generation: {:.2f}x (goal >= 5x; alternating runs: {})\n",
                             gen_s / engine_s, each);
  }
  // batch-1 decode: one prompt, one sample, greedy
  models::RolloutRequest one = reqs.front();
  one.seeds = {0};
  one.params.do_sample = false;
  const auto decode_time = [&](int64_t n) {
    one.params.max_new_tokens = n;
    return timed(a.repeats, [&] { engine.run({one}); });
  };
  const double decode_s = decode_time(a.new_tokens) - decode_time(1);
  std::cout << fmt::format("  engine batch-1 decode      {:>9.1f} tokens/s\n",
                           static_cast<double>(a.new_tokens - 1) / decode_s);
  const auto decode_bf16 = [&](int64_t n) {
    one.params.max_new_tokens = n;
    return timed(a.repeats, [&] { bf16.run({one}); });
  };
  const double decode_bf16_s = decode_bf16(a.new_tokens) - decode_bf16(1);
  std::cout << fmt::format("  engine batch-1 decode bf16 {:>9.1f} tokens/s\n",
                           static_cast<double>(a.new_tokens - 1) / decode_bf16_s);
  models::GenerationConfig g1;
  g1.engine = models::GenerationEngine::kSimple;
  const auto gen_time = [&](int64_t n) {
    g1.max_new_tokens = n;
    return timed(a.repeats, [&] { models::generate(model, {one.prompt}, g1); });
  };
  const double gen1_s = gen_time(a.new_tokens) - gen_time(1);
  std::cout << fmt::format("  generate batch-1 decode    {:>9.1f} tokens/s (simple loop)\n",
                           static_cast<double>(a.new_tokens - 1) / gen1_s);
  return 0;
}

}  // namespace

void add_bench_rollout_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<RolloutArgs>();
  auto* cmd = bench.add_subcommand("rollout", "Rollout-engine throughput vs per-batch generation; KV memory");
  cmd->add_option("--model", args->model, "Hugging Face directory or Troupe checkpoint (default: random llama)");
  cmd->add_option("--n-layer", args->n_layer)->capture_default_str();
  cmd->add_option("--n-head", args->n_head)->capture_default_str();
  cmd->add_option("--n-kv-head", args->n_kv_head)->capture_default_str();
  cmd->add_option("--n-embd", args->n_embd)->capture_default_str();
  cmd->add_option("--intermediate", args->intermediate)->capture_default_str();
  cmd->add_option("--vocab", args->vocab)->capture_default_str();
  cmd->add_option("--prompts", args->prompts)->capture_default_str();
  cmd->add_option("--samples", args->samples, "samples per prompt (G)")->capture_default_str();
  cmd->add_option("--prompt-len", args->prompt_len)->capture_default_str();
  cmd->add_option("--new-tokens", args->new_tokens)->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "timed runs of the engine and of the simple loop, alternating (median)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads (0 = all)")->capture_default_str();
  cmd->add_flag("--skip-generate", args->skip_generate, "leave out the models::generate baseline");
  cmd->add_option("--save", args->save, "write the (random) model as a Hugging Face directory and exit");
  cmd->callback([args, &exit_code] { exit_code = run_rollout(*args); });
}

}  // namespace troupe::bench
