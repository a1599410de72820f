// Internals of the rollout engine (models/engine.h), shared by engine.cpp (scheduling and sampling) and
// engine_forward.cpp (weights and the batched forward step). Not a public API.
#pragma once

#include <torch/types.h>

#include <vector>

#include "models/engine.h"

namespace troupe::models {

// Reference-counted fixed-size blocks: the paged KV cache's bookkeeping (the storage is EngineModel's pools).
class BlockAllocator {
 public:
  int64_t allocate();  // a block with reference count 1 (the pool grows when none is free)
  void retain(int64_t block) { ++refs_[static_cast<size_t>(block)]; }
  void release(int64_t block);
  int64_t used() const { return used_; }
  int64_t peak() const { return peak_; }
  int64_t capacity() const { return static_cast<int64_t>(refs_.size()); }
  void reset_peak() { peak_ = used_; }

 private:
  std::vector<int32_t> refs_;
  std::vector<int64_t> free_;
  int64_t used_ = 0, peak_ = 0;
};

// One layer's weights, contiguous, projections fused: qkv [q + 2 kv, C], up [2F, C] (llama: gate then up) or [4C, C]
// (gpt2), down [C, F]. Matrices are fp32, bf16, or int8 codes with per-row scales, in the engine kernels' 16-column
// panels (engine_kernels::pack_panels, pack_panels_bf16, pack_panels_int8); the rest fp32.
struct EngineLayer {
  torch::Tensor norm1_w, norm1_b, qkv_w, qkv_b, o_w, o_b, norm2_w, norm2_b, up_w, up_b, down_w, down_b;
  torch::Tensor qkv_s, o_s, up_s, down_s;  // per-row scales when the matrix holds int8 codes
};

// Where each token of a step comes from, and where its keys and values go.
struct StepToken {
  int64_t id = 0;
  int64_t position = 0;
  const std::vector<int64_t>* blocks = nullptr;  // its sequence's block table
  bool wants_logits = false;                     // the last computed position of its sequence this step
};

class EngineModel {
 public:
  // bf16_weights (or a bf16 model): the matrices are held and multiplied in bf16 (embeddings, norms and biases fp32).
  // share_weights: fp32 CPU tensors that need no fusing or packing keep the model's storage instead of a copy.
  EngineModel(Gpt& model, int64_t block_size, bool bf16_weights, bool share_weights);
  void load(Gpt& model);
  // Runs the tokens through the trunk, writing their keys and values into the pools (which must already hold
  // blocks for their positions), and returns the logits [rows wanting logits, V] in token order.
  torch::Tensor step(const std::vector<StepToken>& tokens);
  // Makes the pools hold `blocks` blocks.
  void ensure_capacity(int64_t blocks);
  // Copies block `from` into block `to` (all layers): copy-on-write of a shared partial block.
  void copy_block(int64_t from, int64_t to);
  int64_t block_bytes() const;
  const GptConfig& config() const { return config_; }

 private:
  void attention(const std::vector<StepToken>& tokens, const float* qkv, int64_t layer, float* out) const;

  GptConfig config_;
  int64_t block_size_;
  std::vector<EngineLayer> layers_;
  bool use_int8_codes(Gpt& model);

  torch::Tensor embed_, positions_, final_w_, final_b_, head_, head_s_;
  torch::Tensor rope_cos_, rope_sin_;  // [block_size, head_dim / 2] (llama)
  // per layer: keys [blocks, Hkv, head_dim, block_size] (transposed, so that a query meets 16 positions per
  // instruction), values [blocks, block_size, Hkv, head_dim]
  std::vector<std::vector<float>> k_pool_, v_pool_;
  int64_t blocks_ = 0;
  bool bf16_ = false;
  bool share_ = false;
};

}  // namespace troupe::models
