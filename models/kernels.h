// Fused CPU kernels for the GPT's training step: GELU(tanh), masked softmax and the LM head + cross-entropy
// loss. Each is a differentiable op over fp32 or bf16 tensors that does in one or two passes what eager ATen does
// in several (and, in bf16, without ATen 1.13's scalar bf16 loops). Not a general op library: the shapes are the
// ones models/gpt.cpp produces, and anything else falls back to the ATen composition at the call site.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace troupe::models::kernels {

// GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise on a contiguous fp32 or bf16 tensor;
// same dtype out. Backward recomputes tanh from the saved input. Matches torch::gelu(x, "tanh") within 1e-6 in fp32.
at::Tensor gelu_tanh(const at::Tensor& x);

// softmax over the last dimension of scores [B, H, T, S] (contiguous, fp32 or bf16) after scores where keep is
// false are replaced by -1e30 (as masked_fill(~keep, -1e30) does: a fully masked row stays uniform).
// keep: bool, [1 or B, 1, T, S] with unit stride along S (a slice of the causal mask is fine).
// Returns probabilities [B, H, T, S] in the dtype of scores; backward dx = p (dy - sum(dy p)).
at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& keep);

// LayerNorm over the last dimension of x [..., C] (contiguous, fp32 or bf16) with weight [C] and optional bias [C]
// (fp32), statistics in fp32; the output has dtype `out` (fp32, or bf16 so that a following bf16 matmul needs no
// cast). Backward gives dx in x's dtype and fp32 dweight/dbias, summed over rows in a fixed order (the same bits
// for any thread count). Matches torch::layer_norm within 1e-5 in fp32.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                      at::ScalarType out);

// x W^T + b for the bf16-autocast training path, without autocast's casts: x [..., in] (fp32 or bf16) and the fp32
// weight [out, in] / bias [out] are converted to bf16 by a vectorised loop, the matmuls run in bf16 and the output
// is bf16 [..., out], as under autocast. Backward: dx in x's dtype, dweight fp32 (a bf16 matmul, widened), dbias
// the fp32 column sum of dy. Bias may be undefined.
at::Tensor linear_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// One AdamW update of a contiguous fp32 parameter in a single pass, with torch::optim::AdamW's arithmetic:
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)      (step counts from 1)
void adamw_update(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                  const at::Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay,
                  int64_t step);

// Sum over rows n with targets[n] != ignore_index of -log softmax(hidden[n] weight^T)[targets[n]], without
// materialising more than one chunk of logits (about 2^23 of them) at a time.
//   hidden  [N, C] (fp32 or bf16), weight [V, C] fp32 (the tied embedding or the LM head), targets [N] int64.
// With `bf16` the two matmuls per chunk run in bf16 (what autocast would do) and the softmax in fp32.
// The gradients for hidden and weight are computed chunk by chunk during the forward pass (only when either
// requires grad and grad mode is on) and scaled by the incoming gradient in backward: the logits never exist in
// full, forward or backward. Returns a scalar fp32 tensor.
// chunk_logits: the most logits held at once (rows per chunk = max(1, chunk_logits / V)).
at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    int64_t ignore_index, bool bf16, int64_t chunk_logits = int64_t{1} << 23);

}  // namespace troupe::models::kernels
