// Shape of a GPT-2-architecture decoder, bindable from YAML (`model:` section), with its parameter count and
// training FLOPs per token. Torch-free; the module itself is models/gpt.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_binder.h"

namespace troupe::models {

struct GptConfig {
  int64_t n_layer = 4;         // transformer blocks
  int64_t n_head = 4;          // attention heads (n_embd must divide evenly)
  int64_t n_embd = 128;        // model width
  int64_t block_size = 256;    // maximum context length (learned positions)
  int64_t vocab_size = 50257;  // token embeddings / LM head rows
  double dropout = 0.0;        // dropout on embeddings, attention weights and residual branches
  bool bias = true;            // biases in Linear layers and LayerNorms (GPT-2: true)
  bool tie_embeddings = true;  // LM head shares the token embedding matrix (GPT-2: true)
  double layer_norm_eps = 1e-5;

  template <class V>
  void visit(V& v) {
    v.field("n_layer", n_layer, "transformer blocks");
    v.field("n_head", n_head, "attention heads");
    v.field("n_embd", n_embd, "model width (a multiple of n_head)");
    v.field("block_size", block_size, "maximum context length");
    v.field("vocab_size", vocab_size, "vocabulary size");
    v.field("dropout", dropout, "dropout probability (embeddings, attention, residual)");
    v.field("bias", bias, "biases in Linear layers and LayerNorms");
    v.field("tie_embeddings", tie_embeddings, "LM head shares the token embedding");
    v.field("layer_norm_eps", layer_norm_eps, "LayerNorm epsilon");
  }
  void validate(core::ConfigValidator& v) const;
  // Throws ConfigError naming the first bad field (for configs built in code).
  void check() const;

  int64_t head_dim() const { return n_embd / n_head; }
  // Parameters of the trunk and LM head (the head counted once when tied). Matches numel() over
  // GPT::parameters() with no extra heads.
  int64_t parameter_count() const;
  // Training FLOPs per token at context T (forward + backward = 3x forward), PaLM appendix B:
  // 6 * N_matmul + 12 * n_layer * n_embd * T, where N_matmul excludes embeddings (the LM head counts).
  double training_flops_per_token(int64_t context) const;
  // Forward-only FLOPs per token (a third of the above).
  double forward_flops_per_token(int64_t context) const { return training_flops_per_token(context) / 3.0; }
};

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
