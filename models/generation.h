// Text generation with a GPT: greedy, sampling (temperature, top-k, top-p, repetition penalty) and beam search,
// for batches of prompts of different lengths (left padding + attention mask + per-row positions), with or
// without the KV cache. Returns the new tokens and their log-probabilities. Seeded: same seed, same output.
// Not a server and not a tokenizer: ids in, ids out.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/config_binder.h"
#include "models/gpt.h"

namespace troupe::models {

// What runs greedy and sampled generation: the rollout engine (models/engine.h: continuous batching, paged KV cache,
// prefix sharing of identical prompts, batch-invariant kernels, counter-based per-row seeds) or the simple loop over
// a padded batch (this file). Beam search, the repetition penalty, use_cache: false, models off the CPU and dynamic
// NTK RoPE always take the simple loop. The two draw different random numbers: the same seed samples different
// text under each.
enum class GenerationEngine { kPaged, kSimple };
constexpr auto config_names(GenerationEngine) {
  return std::array{std::pair{GenerationEngine::kPaged, "paged"}, std::pair{GenerationEngine::kSimple, "simple"}};
}

struct GenerationConfig {
  int64_t max_new_tokens = 32;
  bool do_sample = false;            // false: greedy (or beam search when num_beams > 1)
  double temperature = 1.0;          // sampling temperature (> 0); also scales the returned log-probs
  int64_t top_k = 0;                 // keep the k most likely tokens (0 = off)
  double top_p = 1.0;                // nucleus: smallest set with cumulative probability >= top_p (1 = off)
  double repetition_penalty = 1.0;   // CTRL penalty on tokens already in prompt or output (1 = off)
  std::vector<int64_t> stop_tokens;  // generation of a row ends after emitting one of these (it is kept)
  int64_t num_beams = 1;             // > 1: beam search (deterministic; do_sample must be false)
  double length_penalty = 1.0;       // beam score = sum log p / length^length_penalty
  int64_t pad_id = 0;                // fills finished rows and left padding
  uint64_t seed = 0;                 // sampling generator seed
  // Optional (not in configs; sampling only): one generator per row, seeded with these (one per prompt), so a row's
  // draws do not depend on the other rows of its batch: the same (prompt, seed) samples the same text in any batch
  // (up to floating-point differences of batched logits). Empty: one generator for the batch, from `seed`.
  std::vector<uint64_t> row_seeds;
  bool use_cache = true;  // false: recompute the whole sequence every step (for checking)
  GenerationEngine engine = GenerationEngine::kPaged;
  // Optional (not in configs; greedy and sampling only): called after each new token of a row with the row's index
  // and its new tokens so far; true ends the row as a stop token would (stop strings: decode and search the text).
  std::function<bool(size_t row, const std::vector<int64_t>& new_tokens)> stop_when;

  template <class V>
  void visit(V& v) {
    v.field("max_new_tokens", max_new_tokens, "tokens to generate at most");
    v.field("do_sample", do_sample, "sample (true) or greedy/beam (false)");
    v.field("temperature", temperature, "sampling temperature");
    v.field("top_k", top_k, "keep the k most likely tokens (0 = off)");
    v.field("top_p", top_p, "nucleus sampling threshold (1 = off)");
    v.field("repetition_penalty", repetition_penalty, "CTRL repetition penalty (1 = off)");
    v.field("stop_tokens", stop_tokens, "token ids that end a sequence");
    v.field("num_beams", num_beams, "beam width (1 = no beam search)");
    v.field("length_penalty", length_penalty, "beam length penalty exponent");
    v.field("pad_id", pad_id, "padding id");
    v.field("seed", seed, "sampling seed");
    v.field("use_cache", use_cache, "use the KV cache");
    v.field("engine", engine, "paged (rollout engine) or simple (padded-batch loop)");
  }
  void validate(core::ConfigValidator& v) const;
  void check() const;  // ConfigError on a bad value (configs built in code)
};

struct GenerationOutput {
  // Per prompt: the new tokens (stop token included when one ended the row), no padding.
  std::vector<std::vector<int64_t>> tokens;
  // Per prompt and new token: log p(token | prefix) under softmax(logits / temperature), before top-k/top-p
  // filtering and the repetition penalty (what PPO needs to recompute). For beams: under the raw model.
  std::vector<std::vector<float>> logprobs;
  std::vector<bool> stopped;  // ended by a stop token (false: hit max_new_tokens)
};

// Runs generation in eval mode without gradients (the model's training flag is restored afterwards).
// Prompts must be non-empty; prompt + max_new_tokens must fit in block_size. Greedy and sampling run on the rollout
// engine when config.engine is paged and the engine runs the request (see GenerationEngine); rows with identical
// prompts then share their prompt's KV blocks, and row i samples with row_seeds[i] (or a seed derived from `seed`
// and i), independent of the batch.
GenerationOutput generate(Gpt& model, const std::vector<std::vector<int64_t>>& prompts, const GenerationConfig& config);

// Left-pads prompts: ids [B, L] (pad_id), mask [B, L] (1 real), positions [B, L] (0.. over real tokens).
struct PaddedBatch {
  torch::Tensor ids, mask, positions;
};
PaddedBatch left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id);

}  // namespace troupe::models
