// The rollout engine: batched generation for RL rollouts, evaluation and `troupe generate` on the CPU, for either
// architecture of models/gpt.h. Continuous batching (sequences join the running batch as others finish), a paged
// KV cache (fixed-size blocks from a reference-counted allocator), prefix sharing (the n samples of one prompt store
// its prompt's keys and values once), per-sample sampling settings and seeds, stop tokens and stop callbacks, and
// the log-probability of every generated token. Every kernel is batch-invariant (models/engine_kernels.h), so a
// sample's tokens and log-probs are bit-identical alone or in any batch. Not beam search and not a training path:
// models/generation.h keeps beams and the repetition penalty; weights are copied in (load_weights after updates).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "models/gpt.h"

namespace troupe::models {

struct SamplingParams {
  int64_t max_new_tokens = 32;
  bool do_sample = false;            // false: greedy (the first of equal maxima)
  double temperature = 1.0;          // > 0; also scales the reported log-probs
  int64_t top_k = 0;                 // 0 = off
  double top_p = 1.0;                // 1 = off
  std::vector<int64_t> stop_tokens;  // a sample ends after emitting one (it is kept)
};

// One prompt and its samples: seeds.size() samples (at least one), sample i drawn with seeds[i].
struct RolloutRequest {
  std::vector<int64_t> prompt;
  SamplingParams params;
  std::vector<uint64_t> seeds{0};
};

struct RolloutSample {
  size_t request = 0, sample = 0;
  std::vector<int64_t> tokens;  // new tokens (the stop token included when one ended the sample)
  std::vector<float> logprobs;  // log p(token | prefix) under softmax(logits / temperature), before top-k / top-p
  bool stopped = false;         // ended by a stop token or the stop callback (false: max_new_tokens or block_size)
};

struct EngineOptions {
  int64_t block_size = 16;         // positions per KV block
  int64_t max_batch = 512;         // running sequences at most (a request with more samples runs alone)
  int64_t max_step_tokens = 2048;  // prompt tokens computed per step at most (longer prompts are chunked)
  int64_t max_kv_blocks = 0;       // admission limit on reserved blocks (0 = none)
  bool prefix_sharing = true;      // the samples of one request share its prompt's blocks
  bool bf16_weights = false;       // multiply in bf16 (AVX512_BF16) even for an fp32 model; a bf16 model always does
  // The embedding tables, norms and biases share the model's fp32 CPU storage instead of being copied: valid while
  // the model is unchanged, as within one models::generate. (fp32 matrices are always repacked into the matrix
  // kernel's 16-column panels, a copy either way.)
  bool share_weights = false;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;  // prompt positions computed (once per request when shared)
  int64_t generated_tokens = 0;
  int64_t peak_kv_blocks = 0;  // most blocks in use at once
  int64_t kv_block_bytes = 0;  // keys and values of one block, all layers
  int64_t peak_kv_bytes() const { return peak_kv_blocks * kv_block_bytes; }
};

// Called after each new token of a sample; true ends the sample (stop strings: decode and search the text).
using RolloutStopFn = std::function<bool(size_t request, size_t sample, const std::vector<int64_t>& new_tokens)>;

class RolloutEngine {
 public:
  // Copies the model's weights to the CPU: LoRA folded in; int8-quantized layers (per-row int8) as their codes and
  // scales, other quantized layers dequantized; fp32, or bf16 matrices for a bf16 model or with bf16_weights.
  // ConfigError for what the engine does not run: dynamic NTK RoPE scaling (its frequencies depend on the batch's
  // longest row).
  explicit RolloutEngine(Gpt& model, EngineOptions options = EngineOptions());
  ~RolloutEngine();
  RolloutEngine(const RolloutEngine&) = delete;
  RolloutEngine& operator=(const RolloutEngine&) = delete;

  // Takes the model's current weights (same architecture).
  void load_weights(Gpt& model);
  // Generates every sample of every request; results ordered by (request, sample). ConfigError for an empty prompt,
  // no seeds, bad settings, or a prompt + max_new_tokens beyond the model's block_size.
  std::vector<RolloutSample> run(const std::vector<RolloutRequest>& requests, const RolloutStopFn& stop = nullptr);
  // Counters of the last run().
  const EngineStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct GenerationConfig;
struct GenerationOutput;

// Whether models::generate hands `config` to the engine: engine paged, greedy or sampling with no repetition
// penalty, the KV cache on, a CPU model, no dynamic NTK RoPE.
bool paged_engine_runs(Gpt& model, const GenerationConfig& config);
// models::generate on the engine (models/engine_generate.cpp): identical prompts become one request whose samples
// share the prompt's blocks; row i draws with config.row_seeds[i], else with a seed mixed from config.seed and i.
GenerationOutput generate_paged(Gpt& model, const std::vector<std::vector<int64_t>>& prompts,
                                const GenerationConfig& config);

}  // namespace troupe::models
