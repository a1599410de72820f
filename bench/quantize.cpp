// `troupe bench quantize`: the size / speed / quality table of the weight formats. For each of fp32, bf16 (the
// peer: the same model with bf16 weights through torch's kernels), int8, int4, nf4 and int8_dynamic, on the same
// randomly initialised model of a given shape (GPT-2 small by default; speed does not depend on the weights):
// weight bytes, batch-1 decode tokens/s with the KV cache (prefill excluded, median of repeats), the ratio to
// bf16, and how many greedy tokens agree with fp32's. With --model/--text/--tokenizer, the perplexity of that
// (trained) model on held-out text in every format, and its increase over fp32.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/commands.h"
#include "bench/stats.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "models/quant.h"
#include "models/quant_kernels.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::bench {

namespace {

struct QuantBenchArgs {
  int64_t n_layer = 12, n_head = 12, n_embd = 768, vocab = 50257;  // GPT-2 small (124M)
  int64_t context = 256;
  int64_t new_tokens = 32;
  int repeats = 3;
  int threads = 1;
  std::vector<std::string> schemes{"fp32", "bf16", "int8", "int4", "nf4", "int8_dynamic"};
  bool no_embedding = false;
  std::string model, text, tokenizer, encoding;
  int64_t ppl_context = 128;
  int64_t ppl_tokens = 50000;
  double min_int8 = 0, min_int4 = 0;
};

// Converts `model` to `scheme` in place: fp32 unchanged, bf16 every parameter and buffer, else quantize_gpt.
void convert(models::Gpt& model, const std::string& scheme, bool embedding) {
  torch::NoGradGuard no_grad;
  if (scheme == "fp32") return;
  if (scheme == "bf16") {  // parameters only (Module::to(dtype) would also cast the bool causal-mask buffer)
    for (auto& p : model->parameters()) p.set_data(p.to(torch::kBFloat16));
    return;
  }
  models::GptQuantConfig q;
  q.options.scheme = models::parse_quant_scheme(scheme);
  q.embedding = embedding;
  models::quantize_gpt(model, q);
}

models::Gpt fresh(const models::GptConfig& c) {
  torch::manual_seed(0);
  return models::Gpt(c);
}

// Mean next-token NLL of `ids` in non-overlapping windows of `context` tokens.
double perplexity(models::Gpt& model, const std::vector<int64_t>& ids, int64_t context) {
  torch::NoGradGuard no_grad;
  double nll = 0;
  int64_t count = 0;
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t start = 0; start + 1 < n; start += context) {
    const int64_t len = std::min(context + 1, n - start);
    if (len < 2) break;
    const torch::Tensor window = torch::tensor(std::vector<int64_t>(ids.begin() + start, ids.begin() + start + len));
    models::GptInput in;
    in.ids = window.slice(0, 0, len - 1).unsqueeze(0);
    const torch::Tensor targets = window.slice(0, 1, len).unsqueeze(0);
    nll += model->lm_loss_sum(model->hidden(in).to(torch::kFloat32), targets, -100).item<double>();
    count += len - 1;
  }
  return std::exp(nll / static_cast<double>(count));
}

int run_quant_bench(const QuantBenchArgs& a) {
  if (a.new_tokens < 2 || a.new_tokens >= a.context) throw ConfigError("--new-tokens must be in [2, context)");
  const bool embedding = !a.no_embedding;
  const int threads = core::set_threads(a.threads);
  models::GptConfig c;
  c.n_layer = a.n_layer;
  c.n_head = a.n_head;
  c.n_embd = a.n_embd;
  c.vocab_size = a.vocab;
  c.block_size = a.context;
  const int64_t prompt_len = a.context - a.new_tokens;
  std::vector<int64_t> prompt(static_cast<size_t>(prompt_len));
  for (int64_t i = 0; i < prompt_len; ++i) prompt[static_cast<size_t>(i)] = (i * 7919) % a.vocab;
  std::cout << fmt::format(
      "quantize: GPT n_layer {} n_head {} n_embd {} vocab {} ({:.1f}M params), batch 1, prompt {} + {} new tokens, "
      "{} thread(s), median of {}; quantized: every trunk linear{}; kernels: {}; ATen CPU {}\n",
      c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.parameter_count() / 1e6, prompt_len, a.new_tokens, threads,
      a.repeats, embedding ? " and the tied embedding / LM head" : "", models::quant_kernels::kernel_path(),
      core::torch_info().cpu_capability);
  struct Row {
    std::string scheme;
    double mb = 0, tps = 0, agree = 0, ppl = 0;
  };
  std::vector<Row> rows;
  std::vector<int64_t> fp32_tokens;
  for (const std::string& scheme : a.schemes) {
    models::Gpt model = fresh(c);
    convert(model, scheme, embedding);
    model->eval();
    models::GenerationConfig g;
    auto timed = [&](int64_t n, std::vector<int64_t>* tokens) {
      models::GenerationConfig gg = g;
      gg.max_new_tokens = n;
      const auto start = std::chrono::steady_clock::now();
      const auto out = models::generate(model, {prompt}, gg);
      if (tokens != nullptr) *tokens = out.tokens[0];
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    Row row;
    row.scheme = scheme;
    row.mb = static_cast<double>(models::gpt_weight_bytes(model)) / 1e6;
    std::vector<int64_t> tokens;
    timed(a.new_tokens, &tokens);  // warm-up, and the tokens
    if (scheme == "fp32") fp32_tokens = tokens;
    std::vector<double> times;
    for (int r = 0; r < a.repeats; ++r) times.push_back(timed(a.new_tokens, nullptr) - timed(1, nullptr));
    row.tps = static_cast<double>(a.new_tokens - 1) / median(times);
    if (!fp32_tokens.empty()) {
      size_t same = 0;
      while (same < tokens.size() && same < fp32_tokens.size() && tokens[same] == fp32_tokens[same]) ++same;
      row.agree = static_cast<double>(same) / static_cast<double>(fp32_tokens.size());
    }
    rows.push_back(row);
  }
  // perplexity of a trained model on held-out text
  if (!a.model.empty()) {
    if (a.text.empty() || a.tokenizer.empty()) throw ConfigError("--model needs --text and --tokenizer");
    std::ifstream in(a.text);
    if (!in) throw IoError(a.text + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
    const std::vector<int> raw = tok.encode(ss.str(), {"<|endoftext|>"}, false);
    std::vector<int64_t> ids(raw.begin(), raw.end());
    if (static_cast<int64_t>(ids.size()) > a.ppl_tokens) ids.resize(static_cast<size_t>(a.ppl_tokens));
    for (Row& row : rows) {
      models::Gpt model = models::load_pretrained_gpt(a.model);
      convert(model, row.scheme, embedding);
      model->eval();
      row.ppl = perplexity(model, ids, std::min(a.ppl_context, model->config().block_size));
    }
    std::cout << fmt::format("perplexity: {} on {} tokens of {} (windows of {})\n", a.model, ids.size(), a.text,
                             a.ppl_context);
  }
  double bf16 = 0, fp32_ppl = 0;
  for (const Row& r : rows) {
    if (r.scheme == "bf16") bf16 = r.tps;
    if (r.scheme == "fp32") fp32_ppl = r.ppl;
  }
  std::cout << fmt::format("  {:<13} {:>10} {:>12} {:>9} {:>14}{}\n", "weights", "size MB", "tokens/s", "vs bf16",
                           "greedy = fp32", a.model.empty() ? "" : "   perplexity   vs fp32");
  int status = 0;
  for (const Row& r : rows) {
    const double ratio = bf16 > 0 ? r.tps / bf16 : 0;
    std::string ppl;
    if (!a.model.empty())
      ppl = fmt::format(" {:>13.3f} {:>+8.2f}%", r.ppl, fp32_ppl > 0 ? 100.0 * (r.ppl / fp32_ppl - 1) : 0.0);
    std::cout << fmt::format("  {:<13} {:>10.1f} {:>12.1f} {:>8.2f}x {:>13.0f}%{}\n", r.scheme, r.mb, r.tps, ratio,
                             100.0 * r.agree, ppl);
    if (r.scheme == "int8" && a.min_int8 > 0 && ratio < a.min_int8) status = 1;
    if (r.scheme == "int4" && a.min_int4 > 0 && ratio < a.min_int4) status = 1;
  }
  if (bf16 > 0) std::cout << "  goals: int8 >= 1.8x bf16, int4 >= 3x bf16 (decode, batch 1)\n";
  return status;
}

}  // namespace

void add_bench_quantize_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<QuantBenchArgs>();
  auto* cmd = bench.add_subcommand("quantize", "Weight formats: size, batch-1 decode tokens/s vs bf16, perplexity");
  cmd->add_option("--n-layer", args->n_layer)->capture_default_str();
  cmd->add_option("--n-head", args->n_head)->capture_default_str();
  cmd->add_option("--n-embd", args->n_embd)->capture_default_str();
  cmd->add_option("--vocab", args->vocab)->capture_default_str();
  cmd->add_option("--context", args->context, "prompt + new tokens")->capture_default_str();
  cmd->add_option("--new-tokens", args->new_tokens, "tokens decoded and timed")->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "timed runs (median)")->capture_default_str();
  cmd->add_option("--threads", args->threads, "torch threads (0 = all)")->capture_default_str();
  cmd->add_option("--schemes", args->schemes, "formats to compare")->delimiter(',')->capture_default_str();
  cmd->add_flag("--no-embedding", args->no_embedding, "keep the tied embedding / LM head in fp32");
  cmd->add_option("--model", args->model, "a trained model for the perplexity column (HF dir or Troupe run)");
  cmd->add_option("--text", args->text, "held-out text for the perplexity");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer of --model");
  cmd->add_option("--encoding", args->encoding, "encoding name for a .tiktoken tokenizer");
  cmd->add_option("--ppl-context", args->ppl_context, "perplexity window")->capture_default_str();
  cmd->add_option("--ppl-tokens", args->ppl_tokens, "tokens of --text used at most")->capture_default_str();
  cmd->add_option("--min-int8", args->min_int8, "exit 1 when int8 decodes below this multiple of bf16");
  cmd->add_option("--min-int4", args->min_int4, "exit 1 when int4 decodes below this multiple of bf16");
  cmd->callback([args, &exit_code] { exit_code = run_quant_bench(*args); });
}

}  // namespace troupe::bench
