// Causal self-attention shared by both decoder architectures (models/gpt.cpp, models/llama.cpp): the mask over
// cache, padding, packed segments and a sliding window, and softmax(q k^T) v through SDPA or Troupe's
// masked-softmax kernel, with grouped-query heads. Internal to troupe::models; not the paged rollout engine's
// attention (models/engine_kernels.h).
#pragma once

#include <torch/types.h>

#include "models/gpt.h"

namespace troupe::models::attention {

// The mask for one forward pass, made once and shared by every layer.
struct Plan {
  torch::Tensor keep;       // [B or 1, 1, T, S] bool: query t (absolute position past + t) may attend key s
  bool causal_only = true;  // keep is the plain T x T causal mask (no cache, padding, segments or window)
  bool sdpa = false;        // at::scaled_dot_product_attention, else matmul + Troupe's masked softmax
  double dropout = 0.0;     // attention-weight dropout (0 outside training)
  torch::Tensor sdpa_bias;  // the additive form of keep for SDPA, made on first use
};

// Builds the plan for `in` (B rows of T new tokens after `past` cached ones). `causal` is the model's
// [block_size, block_size] lower-triangular buffer. sliding_window > 0: a query attends only keys at most
// sliding_window - 1 positions before it. ConfigError on a mask or segment tensor of the wrong shape.
Plan plan(const GptInput& in, const torch::Tensor& causal, int64_t B, int64_t T, int64_t past, int64_t sliding_window,
          bool sdpa, double dropout, torch::Device device);

// softmax(q k^T + mask) v for q [B, H, T, hd] (already scaled), k and v [B, Hkv, S, hd] with H a multiple of Hkv
// (each key/value head serves H / Hkv consecutive query heads). Returns [B, H, T, hd].
torch::Tensor attend(Plan& plan, const torch::Tensor& q, torch::Tensor k, torch::Tensor v, bool training);

// Whether a config-level kernel choice runs SDPA on `device` (kAuto: SDPA on GPUs, the measured winner on CPUs).
bool use_sdpa(AttentionKernel kernel, torch::Device device);

}  // namespace troupe::models::attention
