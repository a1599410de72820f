// A decoder-only language model of either architecture GptConfig::arch names, with an LM head and optional scalar
// value / reward heads on the same trunk, LoRA-capable linear layers, and a KV cache for incremental decoding:
//  - gpt2: learned positions, pre-LayerNorm, GELU(tanh), fused-QKV attention. Parameter names equal Hugging Face
//    GPT2LMHeadModel's ("transformer.h.0.attn.c_attn.weight", ...), but Linear weights are stored [out, in];
//    models/hf_gpt2.h transposes on import/export.
//  - llama (Llama, Qwen2, Mistral, SmolLM): RoPE, RMSNorm, SwiGLU, grouped-query attention, optional Qwen2 biases
//    and a Mistral sliding window (models/llama.cpp). Parameter names and layouts equal LlamaForCausalLM's
//    ("model.layers.0.self_attn.q_proj.weight", ...).
// Generation (sampling, beams) is models/generation.h; training is elsewhere.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <optional>
#include <string>
#include <vector>

#include "models/gpt_config.h"
#include "models/quant.h"

namespace troupe::models {

// Linear layer y = x W^T + b with an optional low-rank adapter: + dropout(x) A^T B^T * (alpha / rank).
// Parameters: "weight" [out, in], "bias" [out] (when enabled), "lora_A" [r, in], "lora_B" [out, r] (when enabled).
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  // Adds an adapter (A ~ Kaiming-uniform as in PEFT, B = 0, so the output is unchanged at first).
  void enable_lora(int64_t rank, double alpha, double dropout);
  bool has_lora() const { return lora_A.defined(); }
  // W += B A * scale (and back). Merged layers skip the adapter path; merging twice is an error.
  void merge_lora();
  void unmerge_lora();
  bool merged() const { return merged_; }
  double lora_alpha() const { return has_lora() ? lora_scale_ * static_cast<double>(lora_A.size(0)) : 0.0; }

  // Replaces the weight by its quantized form (models/quant.h): "weight" becomes an empty frozen parameter and the
  // codes and scales are buffers ("qweight", "qscale", "qmin" for int4; nf4 with double quantization stores
  // "qabsmax", "qabsmax_scale", "qabsmax_offset" instead of "qscale"). The layer then trains only through LoRA.
  // Error when already quantized or when a LoRA adapter is merged.
  void quantize(const QuantOptions& options);
  bool quantized() const { return qweight_.defined(); }
  const QuantizedMatrix& quantized_weight() const { return qw_; }
  // Recomputes what is derived from the buffers (nf4's dequantized absmax, int8_dynamic's row sums): after the
  // buffers were overwritten by a load.
  void refresh_quantized();
  // Quantization-aware training: while set, forward uses fake_quantize(weight) (straight-through gradients).
  void set_fake_quant(QuantScheme scheme, int64_t group = 0);
  QuantScheme fake_quant() const { return fake_.scheme; }

  torch::Tensor weight, bias, lora_A, lora_B;
  int64_t in_features, out_features;

 private:
  double lora_scale_ = 0.0;
  double lora_dropout_ = 0.0;
  bool merged_ = false;
  QuantizedMatrix qw_;  // its tensors share storage with the buffers below (module.to() keeps them in step)
  torch::Tensor qweight_, qscale_, qmin_, qabsmax_, qabsmax_scale_, qabsmax_offset_;
  QuantOptions fake_{QuantScheme::kNone};
};
TORCH_MODULE(Linear);

// Per-layer key/value tensors preallocated for `capacity` positions: k[l], v[l] are [B, Hkv, capacity, head_dim]
// (Hkv = config.kv_heads(); llama keys are stored after the rotary embedding).
// Positions [0, length) are filled. Reorder rows (beam search) with reorder().
struct KvCache {
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;
  int64_t capacity = 0;

  KvCache() = default;
  KvCache(const GptConfig& config, int64_t batch, int64_t capacity, torch::Dtype dtype = torch::kFloat32,
          torch::Device device = torch::kCPU);
  void reorder(const torch::Tensor& rows);  // keeps rows[i] as the new row i (index_select on dim 0)
};

// Inputs of one forward pass.
//  ids            [B, T] int64
//  attention_mask [B, S] (1 = real token, 0 = padding) over all positions seen so far including the cache
//                 (S = cache length + T); undefined = all real.
//  positions      [B, T] int64 position ids; undefined = cache length + arange(T)
//  segment_ids    [B, T] int64, packed sequences (no cache): a query attends only keys of its own segment, so
//                 several sequences share a row without ever seeing each other (give positions restarting at 0)
//  cache          updated in place when given (its length grows by T)
struct GptInput {
  torch::Tensor ids;
  torch::Tensor attention_mask;
  torch::Tensor positions;
  torch::Tensor segment_ids;
  KvCache* cache = nullptr;
};

// Extra scalar heads on the trunk.
struct GptHeads {
  bool value = false;   // per-token scalar (critic): "value_head"
  bool reward = false;  // scalar at the last real token (reward model): "reward_head"
};

// Which parts of a GPT are quantized, and how: what a checkpoint records (extra key "<group>.quantization") so that
// the model can be rebuilt. targets: globs over linear layer names (default: every trunk layer and an untied LM
// head; the value / reward heads never). embedding: the tied token embedding / LM head too.
struct GptQuantConfig {
  QuantOptions options{QuantScheme::kNone};
  std::vector<std::string> targets{"transformer.*", "model.*", "lm_head"};
  bool embedding = true;
  bool fake = false;  // quantization-aware training: the layers fake-quantize fp32 weights (enable_fake_quant)

  bool enabled() const { return options.scheme != QuantScheme::kNone; }
  static GptQuantConfig from_section(const QuantSection& s) {
    return {s.options(), s.targets, s.embedding && !s.qat, s.qat};
  }
  std::string to_json() const;
  static GptQuantConfig from_json(const std::string& text);  // DataError on a malformed record
};

// Which attention implementation GptImpl::hidden uses. kSdpa: at::scaled_dot_product_attention (flash /
// memory-efficient kernels on CUDA, the fused flash kernel on the CPU). kTroupe: matmul + Troupe's masked-softmax
// kernel (models/kernels.h) + matmul. kAuto: kSdpa on GPUs; on the CPU the one `troupe bench train --attention`
// measured faster here (see kCpuAttention in gpt.cpp and the README).
enum class AttentionKernel { kAuto, kSdpa, kTroupe };

class GptImpl : public torch::nn::Module {
 public:
  using Heads = GptHeads;
  explicit GptImpl(GptConfig config, GptHeads heads = GptHeads());

  // Final-LayerNorm hidden states [B, T, n_embd].
  torch::Tensor hidden(const GptInput& in);
  // LM logits [B, T, vocab] from hidden states.
  torch::Tensor logits(const torch::Tensor& hidden);
  torch::Tensor forward(const torch::Tensor& ids) {
    GptInput in;
    in.ids = ids;
    return logits(hidden(in));
  }
  // Sum of next-token cross-entropy over positions whose target is not ignore_index, from hidden states
  // [B, T, C] (or [N, C]) and targets [B, T] (or [N]). With tied embeddings or a plain LM head it runs the fused
  // LM-head + loss kernel (models/kernels.h: logits are never held in full; bf16 matmuls under bf16 autocast);
  // otherwise logits + cross_entropy. Returns a scalar fp32 tensor.
  torch::Tensor lm_loss_sum(const torch::Tensor& hidden, const torch::Tensor& targets, int64_t ignore_index);
  // Per-token values [B, T] (needs Heads::value).
  torch::Tensor values(const torch::Tensor& hidden);
  // One scalar per row [B] at the last position where attention_mask is 1 (needs Heads::reward).
  torch::Tensor reward(const torch::Tensor& hidden, const torch::Tensor& attention_mask);

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections N(0, 0.02 / sqrt(2 n_layer)), zero biases,
  // LayerNorms (1, 0). Uses torch's global generator (seed it first). Heads: N(0, 1 / sqrt(n_embd + 1)).
  void reset_parameters();

  const GptConfig& config() const { return config_; }
  // Where the parameters live (the token embedding's device). hidden(), lm_loss_sum() and reward() move CPU
  // inputs there; what they return lives there.
  torch::Device device() const;
  // The dtype of the (floating-point) weights: fp32, or bf16 after module->to(bf16); what a KV cache holds.
  torch::Dtype dtype() const;
  // An execution choice, not part of the architecture: results agree within float rounding.
  void set_attention_kernel(AttentionKernel k) { attention_ = k; }
  AttentionKernel attention_kernel() const { return attention_; }
  const Heads& heads() const { return heads_; }
  // All linear layers by parameter-name prefix ("transformer.h.0.attn.c_attn", "model.layers.0.self_attn.q_proj"...).
  std::vector<std::pair<std::string, Linear>> linear_layers();

  // Quantizes the tied token embedding, which is also the LM head (only with tie_embeddings): the embedding
  // lookup dequantizes rows, the LM head runs the quantized product. Buffers "transformer.wte.qweight", ...
  void quantize_embedding(const QuantOptions& options);
  bool embedding_quantized() const { return wte_q_.defined(); }
  const QuantizedMatrix& quantized_embedding() const { return wte_q_; }
  void refresh_quantized_embedding();
  // The token embedding's module name: "transformer.wte" (gpt2) or "model.embed_tokens" (llama).
  std::string embedding_name() const { return config_.llama() ? "model.embed_tokens" : "transformer.wte"; }
  // What quantize_gpt applied (scheme none when nothing).
  const GptQuantConfig& quant_config() const { return quant_; }
  void set_quant_config(const GptQuantConfig& config) { quant_ = config; }

 private:
  struct Trunk;  // "transformer": wte, wpe, h.<i>.{ln_1, attn.{c_attn, c_proj}, ln_2, mlp.{c_fc, c_proj}}, ln_f
  // "model": embed_tokens, layers.<i>.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
  // mlp.{gate,up,down}_proj}, norm (models/llama.cpp)
  struct LlamaTrunk;

  // llama only (models/llama.cpp): registers the trunk and sets wte_, wte_module_, dtype_ref_; the trunk's hidden
  // states for token embeddings x; initialisation.
  void build_llama();
  torch::Tensor llama_hidden(torch::Tensor x, const torch::Tensor& positions, void* attention_plan, KvCache* cache,
                             int64_t past);
  void reset_llama();

  GptConfig config_;
  Heads heads_;
  std::shared_ptr<Trunk> trunk_;
  std::shared_ptr<LlamaTrunk> llama_;
  torch::Tensor wte_;                              // the token embedding parameter (either architecture)
  std::shared_ptr<torch::nn::Module> wte_module_;  // its module (quantized-embedding buffers live there)
  torch::Tensor dtype_ref_;                        // a float parameter never quantized: what dtype() reports
  Linear lm_head_{nullptr};                        // only when embeddings are untied
  Linear value_head_{nullptr}, reward_head_{nullptr};
  torch::Tensor causal_;   // [min(block_size, 4096)]^2 bool, true where a query may attend a key
  QuantizedMatrix wte_q_;  // the quantized tied embedding (shares storage with the wte module's buffers)
  GptQuantConfig quant_;
  torch::Tensor wte_qabsmax_offset_;
  AttentionKernel attention_ = AttentionKernel::kAuto;
};
TORCH_MODULE(Gpt);

// Sets requires_grad = false on every parameter whose name matches one of the glob patterns (fnmatch, e.g.
// "transformer.h.0.*", "*.ln_?.*"); returns the names frozen. ConfigError when a pattern matches nothing.
std::vector<std::string> freeze_parameters(torch::nn::Module& module, const std::vector<std::string>& patterns);

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> targets{"*.attn.c_attn"};  // globs over linear layer names
};
// Adds adapters to the matching linear layers and freezes every other parameter (heads included, unless
// `train_heads`). Returns the adapted layer names; ConfigError when nothing matches.
std::vector<std::string> apply_lora(Gpt& model, const LoraConfig& config, bool train_heads = false);
void merge_lora(Gpt& model);
void unmerge_lora(Gpt& model);

// Quantizes `model` in place (no_grad; the quantized weights are frozen). Returns the quantized layer names
// (plus "transformer.wte" for the embedding). ConfigError when the targets match nothing.
std::vector<std::string> quantize_gpt(Gpt& model, const GptQuantConfig& config);
// Quantization-aware training: fake-quantizes (set_fake_quant) every linear layer matching `targets` (never the
// value / reward heads). Returns the layer names; ConfigError when nothing matches.
std::vector<std::string> enable_fake_quant(Gpt& model, QuantScheme scheme, int64_t group,
                                           const std::vector<std::string>& targets);
// Recomputes what quantized layers derive from their buffers (after a load overwrote them).
void refresh_quantized(Gpt& model);
// Weight bytes of the model as stored: quantized layers at their packed size, everything else at its dtype.
int64_t gpt_weight_bytes(Gpt& model);

// Parameters with requires_grad, and their element count.
int64_t trainable_parameter_count(torch::nn::Module& module);

}  // namespace troupe::models
