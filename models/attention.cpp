// Implementation of models/attention.h.
#include "models/attention.h"

#include <torch/torch.h>

#include "core/errors.h"
#include "models/kernels.h"

namespace troupe::models::attention {

namespace {
// kAuto's choice on the CPU, from `troupe bench train --attention sdpa|troupe` on this project's machine (README).
constexpr AttentionKernel kCpuAttention = AttentionKernel::kTroupe;

bool fused_dtype(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16);
}

// Finite in fp32 and bf16 (lowest() overflows bf16); a fully masked row stays uniform instead of NaN.
constexpr float kMasked = -1e30f;
}  // namespace

bool use_sdpa(AttentionKernel kernel, torch::Device device) {
  return kernel == AttentionKernel::kSdpa ||
         (kernel == AttentionKernel::kAuto && (!device.is_cpu() || kCpuAttention == AttentionKernel::kSdpa));
}

Plan plan(const GptInput& in, const torch::Tensor& causal, int64_t B, int64_t T, int64_t past, int64_t sliding_window,
          bool sdpa, double dropout, torch::Device dev) {
  Plan p;
  p.sdpa = sdpa;
  p.dropout = dropout;
  const int64_t S = past + T;
  const int64_t block = causal.size(0);
  const auto on = torch::TensorOptions(torch::kLong).device(dev);
  if (S <= block) {
    p.keep = causal.slice(0, past, S).slice(1, 0, S);
  } else {
    p.keep = torch::arange(S, on).unsqueeze(0) <= torch::arange(past, S, on).unsqueeze(1);
  }
  if (sliding_window > 0 && S > sliding_window) {
    // key s is visible from query t when t - s < window (transformers' sliding_window_overlay)
    const torch::Tensor t = torch::arange(past, S, on).unsqueeze(1), s = torch::arange(S, on).unsqueeze(0);
    p.keep = p.keep & ((t - s) < sliding_window);
  }
  p.keep = p.keep.view({1, 1, T, S});
  if (in.attention_mask.defined()) {
    if (in.attention_mask.size(0) != B || in.attention_mask.size(1) != S) {
      throw ConfigError("attention_mask must be [batch, cache length + time] = [" + std::to_string(B) + ", " +
                        std::to_string(S) + "]");
    }
    p.keep = p.keep & in.attention_mask.to(dev, torch::kBool).view({B, 1, 1, S});
  }
  if (in.segment_ids.defined()) {
    if (in.cache != nullptr || in.segment_ids.size(0) != B || in.segment_ids.size(1) != T)
      throw ConfigError("segment_ids must be [batch, time] = [" + std::to_string(B) + ", " + std::to_string(T) +
                        "] and are not used with a KV cache");
    const torch::Tensor seg = in.segment_ids.to(dev, torch::kLong);
    p.keep = p.keep & (seg.unsqueeze(2) == seg.unsqueeze(1)).view({B, 1, T, S});  // block-diagonal: no crossing
  }
  p.causal_only = in.cache == nullptr && !in.attention_mask.defined() && !in.segment_ids.defined() &&
                  (sliding_window == 0 || S <= sliding_window);
  return p;
}

torch::Tensor attend(Plan& p, const torch::Tensor& q, torch::Tensor k, torch::Tensor v, bool training) {
  const int64_t H = q.size(1), Hkv = k.size(1);
  if (H != Hkv) {
    // grouped-query: key/value head j serves query heads j*G .. j*G+G-1
    const int64_t G = H / Hkv, B = k.size(0), S = k.size(2), hd = k.size(3);
    k = k.unsqueeze(2).expand({B, Hkv, G, S, hd}).reshape({B, H, S, hd});
    v = v.unsqueeze(2).expand({B, Hkv, G, S, hd}).reshape({B, H, S, hd});
  }
  const double drop = training ? p.dropout : 0.0;
  if (p.sdpa) {
    // q is already scaled (scale 1). Padding masks are additive and finite.
    if (!p.sdpa_bias.defined() && !p.causal_only)
      p.sdpa_bias = torch::zeros(p.keep.sizes(), q.options()).masked_fill_(p.keep.logical_not(), kMasked);
    return at::scaled_dot_product_attention(q, k, v, p.causal_only ? std::optional<torch::Tensor>() : p.sdpa_bias, drop,
                                            p.causal_only, /*scale=*/1.0);
  }
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1));  // [B, H, T, S]
  att = fused_dtype(att) ? kernels::masked_softmax(att, p.keep)
                         : torch::softmax(att.masked_fill(p.keep.logical_not(), kMasked), -1);
  if (drop > 0) att = torch::dropout(att, drop, training);
  return torch::matmul(att, v);
}

}  // namespace troupe::models::attention
