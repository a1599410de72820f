// Shape of a decoder, bindable from YAML (`model:` section), with its parameter count and training FLOPs per token:
// GPT-2's architecture (learned positions, LayerNorm, GELU MLP) or the Llama family's (RoPE, RMSNorm, SwiGLU,
// grouped-query attention; Qwen2's biases and Mistral's sliding window are options). Torch-free; the module itself
// is models/gpt.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config_binder.h"

namespace troupe::models {

enum class Arch { kGpt2, kLlama };
constexpr auto config_names(Arch) {
  return std::array{std::pair{Arch::kGpt2, "gpt2"}, std::pair{Arch::kLlama, "llama"}};
}

// Rotary-embedding frequency scaling, as Hugging Face configs name it (rope_scaling.rope_type).
enum class RopeScaling { kNone, kLinear, kDynamic, kLlama3 };
constexpr auto config_names(RopeScaling) {
  return std::array{std::pair{RopeScaling::kNone, "none"}, std::pair{RopeScaling::kLinear, "linear"},
                    std::pair{RopeScaling::kDynamic, "dynamic"}, std::pair{RopeScaling::kLlama3, "llama3"}};
}

struct GptConfig {
  Arch arch = Arch::kGpt2;
  int64_t n_layer = 4;           // transformer blocks
  int64_t n_head = 4;            // attention heads (n_embd must divide evenly)
  int64_t n_embd = 128;          // model width
  int64_t block_size = 256;      // maximum context length (learned positions)
  int64_t vocab_size = 50257;    // token embeddings / LM head rows
  double dropout = 0.0;          // dropout on embeddings, attention weights and residual branches
  bool bias = true;              // biases in Linear layers and LayerNorms (GPT-2: true)
  bool tie_embeddings = true;    // LM head shares the token embedding matrix (GPT-2: true)
  double layer_norm_eps = 1e-5;  // LayerNorm (gpt2) or RMSNorm (llama) epsilon
  // Llama family only (arch: llama); ignored by gpt2, whose `bias` covers all of its layers.
  int64_t n_kv_head = 0;          // key/value heads: n_head (0) = multi-head, 1 = multi-query, else grouped-query
  int64_t head_size = 0;          // per-head width (0 = n_embd / n_head)
  int64_t intermediate_size = 0;  // SwiGLU width (0 = 8/3 n_embd rounded up to a multiple of 32)
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;            // linear / dynamic / llama3 scaling factor
  int64_t rope_original_context = 0;   // dynamic / llama3: the pre-trained context (0 = block_size)
  double rope_low_freq_factor = 1.0;   // llama3
  double rope_high_freq_factor = 4.0;  // llama3
  bool qkv_bias = false;               // biases on q/k/v projections (Qwen2)
  bool o_bias = false;                 // bias on the attention output projection
  bool mlp_bias = false;               // biases on gate/up/down projections
  int64_t sliding_window = 0;          // a query attends only the last sliding_window keys (Mistral; 0 = off)

  template <class V>
  void visit(V& v) {
    v.field("arch", arch, "architecture: gpt2 or llama (Llama, Qwen2, Mistral, SmolLM)");
    v.field("n_layer", n_layer, "transformer blocks");
    v.field("n_head", n_head, "attention heads");
    v.field("n_embd", n_embd, "model width (a multiple of n_head)");
    v.field("block_size", block_size, "maximum context length");
    v.field("vocab_size", vocab_size, "vocabulary size");
    v.field("dropout", dropout, "dropout probability (embeddings, attention, residual)");
    v.field("bias", bias, "biases in Linear layers and LayerNorms");
    v.field("tie_embeddings", tie_embeddings, "LM head shares the token embedding");
    v.field("layer_norm_eps", layer_norm_eps, "LayerNorm (gpt2) / RMSNorm (llama) epsilon");
    v.field("n_kv_head", n_kv_head, "llama: key/value heads (0 = n_head; 1 = multi-query)");
    v.field("head_size", head_size, "llama: width of one head (0 = n_embd / n_head)");
    v.field("intermediate_size", intermediate_size, "llama: SwiGLU width (0 = 8/3 n_embd, rounded up to 32)");
    v.field("rope_theta", rope_theta, "llama: RoPE base");
    v.field("rope_scaling", rope_scaling, "llama: RoPE scaling none, linear, dynamic (NTK) or llama3");
    v.field("rope_factor", rope_factor, "llama: RoPE scaling factor");
    v.field("rope_original_context", rope_original_context,
            "llama: pre-trained context for dynamic/llama3 (0 = block_size)");
    v.field("rope_low_freq_factor", rope_low_freq_factor, "llama: llama3 scaling low_freq_factor");
    v.field("rope_high_freq_factor", rope_high_freq_factor, "llama: llama3 scaling high_freq_factor");
    v.field("qkv_bias", qkv_bias, "llama: biases on q/k/v projections (Qwen2)");
    v.field("o_bias", o_bias, "llama: bias on the attention output projection");
    v.field("mlp_bias", mlp_bias, "llama: biases on the SwiGLU projections");
    v.field("sliding_window", sliding_window, "llama: attend only the last N keys (Mistral; 0 = off)");
  }
  void validate(core::ConfigValidator& v) const;
  // Throws ConfigError naming the first bad field (for configs built in code).
  void check() const;

  bool llama() const { return arch == Arch::kLlama; }
  int64_t head_dim() const { return llama() && head_size > 0 ? head_size : n_embd / n_head; }
  int64_t kv_heads() const { return llama() && n_kv_head > 0 ? n_kv_head : n_head; }
  // MLP width: 4 n_embd (gpt2), intermediate_size or its default (llama).
  int64_t mlp_width() const;
  // Parameters of the trunk and LM head (the head counted once when tied). Matches numel() over
  // GPT::parameters() with no extra heads.
  int64_t parameter_count() const;
  // Training FLOPs per token at context T (forward + backward = 3x forward), PaLM appendix B:
  // 6 * N_matmul + 12 * n_layer * n_embd * T, where N_matmul excludes embeddings (the LM head counts).
  double training_flops_per_token(int64_t context) const;
  // Forward-only FLOPs per token (a third of the above).
  double forward_flops_per_token(int64_t context) const { return training_flops_per_token(context) / 3.0; }
};

// The Llama RoPE inverse frequencies [head_dim / 2] for a forward pass whose largest position is max_position
// (dynamic NTK scaling depends on it), and the factor cos/sin are multiplied by (1 for every scheme here), as
// transformers' ROPE_INIT_FUNCTIONS compute them.
std::vector<double> rope_inverse_frequencies(const GptConfig& config, int64_t max_position);

// GPT-2 sizes by Hugging Face name: gpt2, gpt2-medium, gpt2-large, gpt2-xl. False if unknown.
bool gpt2_preset(const std::string& name, GptConfig& out);

// LoRA adapters as a config section (training's `lora:`, the PPO/GRPO `actor.lora`); models::LoraConfig (gpt.h)
// is what apply_lora takes.
struct LoraSection {
  int64_t rank = 0;  // 0 = no LoRA (full fine-tuning)
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> targets{"*.attn.c_attn"};

  template <class V>
  void visit(V& v) {
    v.field("rank", rank, "LoRA rank (0 = off)");
    v.field("alpha", alpha, "LoRA alpha (scale = alpha / rank)");
    v.field("dropout", dropout, "dropout on the adapter input");
    v.field("targets", targets, "glob patterns over linear layer names");
  }
  void validate(core::ConfigValidator& v) const;
};

}  // namespace troupe::models
