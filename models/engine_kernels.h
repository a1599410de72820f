// Batch-invariant CPU kernels of the rollout engine (models/engine.h): every output element is computed by the same
// instructions in the same order whatever the number of rows, the row's place in the batch and the thread count,
// so a sequence's logits are bit-identical alone or in a batch of 512. AVX-512 (fp32, bf16, int8 weights), AVX2
// (fp32) and portable paths, picked at run time. Not autograd kernels: inference only.
#pragma once

#include <cstdint>

namespace troupe::models::engine_kernels {

// Caps the instruction set the kernels use (2 AVX-512, 1 AVX2 + FMA, 0 portable), for tests: the fp32 kernels
// (linear, key_scores, weighted_values) give bit-identical results on every path, since each computes an output
// element as the same chain of fused multiply-adds.
void force_isa(int level);

// Packs w [N, K] (row-major, torch's Linear layout) into linear's layout: ceil(N / 16) panels of [K, 16], panel p
// holding columns 16 p .. 16 p + 15 (zeros past N). out holds ceil(N / 16) * K * 16 floats.
void pack_panels(const float* w, int64_t N, int64_t K, float* out);

// y[m, n] = sum_k x[m, k] w[n, k] (+ bias[n]) for x [M, K], y [M, N], w packed by pack_panels: each element the chain
// acc = fma(x[m, k], w[n, k], acc) over k = 0, 1, ..., K - 1 from zero. Parallel over panels on ATen's intra-op
// threads.
void linear(const float* x, int64_t M, int64_t K, const float* panels, int64_t N, const float* bias, float* y);

// Packs bf16 weights w [N, K] (raw bit patterns) into linear_bf16's layout: ceil(N / 16) panels of [ceil(K / 2), 16]
// 32-bit lanes, lane c of row i holding (w[n, 2i], w[n, 2i + 1]) in its low and high halves (n = 16 p + c; zeros past
// N and K). out holds ceil(N / 16) * ceil(K / 2) * 16 values.
void pack_panels_bf16(const uint16_t* w, int64_t N, int64_t K, uint32_t* out);

// As linear with bf16 weights packed by pack_panels_bf16: x is rounded to bf16 (nearest even) and each element is a
// chain over k's pairs, each pair's two products added to the fp32 sum (AVX512_BF16's vdpbf16ps; a portable loop
// adding the high product, then the low one, elsewhere).
void linear_bf16(const float* x, int64_t M, int64_t K, const uint32_t* panels, int64_t N, const float* bias, float* y);

// Packs int8 codes w [N, K] into linear_int8's layout: ceil(N / 16) panels of [K, 16] (zeros past N).
void pack_panels_int8(const int8_t* w, int64_t N, int64_t K, int8_t* out);

// As linear with int8 weight codes packed by pack_panels_int8 and a per-row scale (Troupe's int8 scheme,
// models/quant.h): y[m, n] = fma(scale[n], chain over k of x[m, k] q[n, k], bias[n] or 0), the codes widened to fp32
// (weight-only: activations stay fp32); the AVX-512 and portable paths give the same bits.
void linear_int8(const float* x, int64_t M, int64_t K, const int8_t* panels, const float* scale, int64_t N,
                 const float* bias, float* y);

// One row: y = w * x / sqrt(mean(x^2) + eps) (RMSNorm), or (x - mean) / sqrt(var + eps) * w + b (LayerNorm, when
// `layer_norm`; b may be null). x and y may alias.
void norm_row(const float* x, int64_t C, const float* w, const float* b, double eps, bool layer_norm, float* y);

// out[i] = exp((x[i] - shift) * scale) (relative error ~2e-7; 0 below e^-87); returns their sum, in a fixed order.
// With block_sums: block_sums[b] = the sum of out[16 b .. 16 b + 15] (the last block partial), in a fixed order.
float exp_sum(const float* x, int64_t n, float shift, float scale, float* out, float* block_sums = nullptr);

// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i] (SwiGLU), or, without `up`,
// out[i] = gelu_tanh(gate[i]) = 0.5 g (1 + tanh(0.7978845608 (g + 0.044715 g^3))) (GPT-2's GELU). out may alias gate.
void activation(const float* gate, const float* up, int64_t n, float* out);

// The largest of x[0, n) (NaNs skipped; -infinity when there is none).
float max_value(const float* x, int64_t n);

// Attention scores of nq query rows (q + i * hd) against `lanes` (<= 16) keys held transposed (key j's element d
// at kt[d * stride + j], as the engine's paged key blocks store them): scores[i * ld + j] = q_i . k_j, each a chain
// of fused multiply-adds over d = 0, 1, ..., hd - 1 from zero, on every path.
void key_scores(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t stride, int64_t lanes, float* scores,
                int64_t ld);

// out[i * hd + d] = sum_j p[i * ld + j] v[j][d] over j = 0, 1, ..., count - 1 (fused multiply-adds from zero, in
// that order, on every path) for nq weight rows: the probability-weighted values of attention.
void weighted_values(const float* p, int64_t nq, int64_t ld, const float* const* v, int64_t count, int64_t hd,
                     float* out);

}  // namespace troupe::models::engine_kernels
