// Implementation of models/engine_kernels.h, AVX-512 (with AVX512_BF16 for bf16), AVX2 (fp32) and portable paths
// picked at run time. Matrices (fp32, bf16 pairs, int8 codes) are packed in 16-column panels and each output element
// is one chain over k (register tiles of up to 8 rows x 3 panels), so no tile shape or batch changes a result.
#include "models/engine_kernels.h"

#include <ATen/Parallel.h>
// GCC 12's intrinsics pass _mm512_undefined_ps() and friends as "don't care" operands, which its uninitialized-use
// analysis reports at the header's lines once they inline here: silenced for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#define TROUPE_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define TROUPE_AVX512_BF16 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma")))

namespace troupe::models::engine_kernels {

namespace {

// The best path allowed: 2 AVX-512, 1 AVX2 + FMA, 0 portable (lowered by force_isa, for tests).
std::atomic<int> g_max_isa{2};

bool cpu_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return yes;
}

bool has_avx512() { return g_max_isa.load(std::memory_order_relaxed) >= 2 && cpu_avx512(); }

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return g_max_isa.load(std::memory_order_relaxed) >= 1 && yes;
}

// ---- AVX-512 -----------------------------------------------------------------------------------------------------

template <int N>
using Int = std::integral_constant<int, N>;

// ---- matrices (fp32, int8 codes): 16-column panels, a chain of fused multiply-adds over k per element -----------

// y[r, 16 p + c] = acc[r][p][c] (+ bias[16 p + c]) for the columns below n_valid; with `scale` (int8 codes)
// fma(acc, scale[16 p + c], bias or 0).
template <int MR, int NP>
TROUPE_AVX512 inline void store_tile(const __m512 (&acc)[MR][NP], const float* scale, const float* bias, float* y,
                                     int64_t ldy, int64_t n_valid) {
#pragma GCC unroll 8
  for (int p = 0; p < NP; ++p) {
    const int64_t cols = std::min<int64_t>(16, n_valid - p * 16);
    if (cols <= 0) break;
    const auto m = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
    const __m512 b = bias != nullptr ? _mm512_maskz_loadu_ps(m, bias + p * 16) : _mm512_setzero_ps();
    const __m512 s = scale != nullptr ? _mm512_maskz_loadu_ps(m, scale + p * 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 v = scale != nullptr  ? _mm512_fmadd_ps(acc[r][p], s, b)
                       : bias != nullptr ? _mm512_add_ps(acc[r][p], b)
                                         : acc[r][p];
      _mm512_mask_storeu_ps(y + r * ldy + p * 16, m, v);
    }
  }
}

// 16 weights of a panel row as fp32 lanes: fp32 as they are, int8 codes widened.
TROUPE_AVX512 inline __m512 load_panel(const float* p) { return _mm512_loadu_ps(p); }
TROUPE_AVX512 inline __m512 load_panel(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// A register tile of MR rows x NP panels (16 columns each): per k, NP panel vectors and MR broadcast inputs, MR * NP
// fused multiply-adds. Every element is the chain acc = fma(x[m, k], w[n, k], acc) for k = 0, 1, ..., K - 1 from
// zero, then + bias[n] (int8 codes, widened: fma(acc, scale[n], bias[n] or 0)): the same in any tile, on any path,
// so a row's result never depends on the batch.
template <int MR, int NP, class W>
TROUPE_AVX512 void gemm_tile(const float* x, int64_t K, const W* panels, const float* scale, const float* bias,
                             float* y, int64_t ldy, int64_t n_valid) {
  __m512 acc[MR][NP];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  const int64_t stride = K * 16;
  for (int64_t k = 0; k < K; ++k) {
    __m512 w[NP];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) w[p] = load_panel(panels + p * stride + k * 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * K + k]);
#pragma GCC unroll 8
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_fmadd_ps(xb, w[p], acc[r][p]);
    }
  }
  store_tile<MR, NP>(acc, scale, bias, y, ldy, n_valid);
}

// Rows [0, M) x panels [p0, p1) in blocks of 64 rows (in L2) x groups of NP panels: tile(mr, np, m, p) computes rows
// [m, m + mr) x panels [p, p + np) (mr and np integral constants). Tiles of MR rows, then 4, 2 and 1 for the rows
// left; a short last group in one narrower tile (4 panels and single ones past them when NP > 4).
template <int MR, int NP, class Tile>
void for_panel_tiles(int64_t M, int64_t p0, int64_t p1, const Tile& tile) {
  constexpr int64_t kRowBlock = 64;
  for (int64_t r0 = 0; r0 < M; r0 += kRowBlock) {
    const int64_t r1 = std::min(M, r0 + kRowBlock);
    for (int64_t p = p0; p < p1; p += NP) {
      const int64_t np = std::min<int64_t>(NP, p1 - p);
      auto rows = [&](auto np_c) {
        int64_t m = r0;
        for (; m + MR <= r1; m += MR) tile(Int<MR>(), np_c, m, p);
        for (; m + 4 <= r1 && MR > 4; m += 4) tile(Int<4>(), np_c, m, p);
        for (; m + 2 <= r1 && MR > 2; m += 2) tile(Int<2>(), np_c, m, p);
        for (; m < r1; ++m) tile(Int<1>(), np_c, m, p);
      };
      if (np == NP) {
        rows(Int<NP>());
      } else if (np >= 4) {
        rows(Int<4>());
        for (int64_t q = 4; q < np; ++q)
          for (int64_t m = r0; m < r1; ++m) tile(Int<1>(), Int<1>(), m, p + q);
      } else if (np == 3) {
        rows(Int<3>());
      } else if (np == 2) {
        rows(Int<2>());
      } else {
        rows(Int<1>());
      }
    }
  }
}

// Panels per register tile: 3 with 8 rows; 6 for one or two rows (decode), to keep 6+ chains in flight.
int64_t panels_per_tile(int64_t M) { return M <= 2 ? 6 : 3; }

// The tile shapes for M rows: for_panel_tiles<8, 3>, or <2, 6> for one or two rows.
template <class Tile>
void panel_tiles(int64_t M, int64_t p0, int64_t p1, const Tile& tile) {
  if (M <= 2) {
    for_panel_tiles<2, 6>(M, p0, p1, tile);
  } else {
    for_panel_tiles<8, 3>(M, p0, p1, tile);
  }
}

// Panels [p0, p1) of y = x w^T (+ bias), w fp32 or int8 codes (with per-row `scale`; null for fp32).
template <class W>
void gemm_avx512(const float* x, int64_t M, int64_t K, const W* w, const float* scale, int64_t N, const float* bias,
                 float* y, int64_t p0, int64_t p1) {
  panel_tiles(M, p0, p1, [&](auto mr, auto np, int64_t m, int64_t p) {
    gemm_tile<decltype(mr)::value, decltype(np)::value>(
        x + m * K, K, w + p * K * 16, scale != nullptr ? scale + p * 16 : nullptr,
        bias != nullptr ? bias + p * 16 : nullptr, y + m * N + p * 16, N, N - p * 16);
  });
}

// Splits the panels of an N-column matrix over ATen's intra-op threads in groups of `group` panels (so that only the
// matrix's last group is short), each task at least ~min_work multiply-adds so that small matrices stay on one
// thread: f(p0, p1) for each task's panels.
template <class F>
void for_panel_groups(int64_t M, int64_t K, int64_t N, int64_t group, int64_t min_work, const F& f) {
  const int64_t n_panels = (N + 15) / 16;
  const int64_t grain = std::max<int64_t>(1, min_work / std::max<int64_t>(1, 16 * group * M * K));
  at::parallel_for(0, (n_panels + group - 1) / group, grain,
                   [&](int64_t g0, int64_t g1) { f(g0 * group, std::min(n_panels, g1 * group)); });
}

// key_scores for NQ query rows: one 16-lane accumulator per row, a fused multiply-add per element of the head.
template <int NQ>
TROUPE_AVX512 void key_scores_avx512(const float* q, int64_t hd, const float* kt, int64_t stride, __mmask16 lanes,
                                     float* scores, int64_t ld) {
  __m512 acc[NQ];
  for (int i = 0; i < NQ; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    const __m512 k = lanes == 0xFFFF ? _mm512_loadu_ps(kt + d * stride) : _mm512_maskz_loadu_ps(lanes, kt + d * stride);
    for (int i = 0; i < NQ; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * hd + d]), k, acc[i]);
  }
  for (int i = 0; i < NQ; ++i) _mm512_mask_storeu_ps(scores + i * ld, lanes, acc[i]);
}

TROUPE_AVX512 void key_scores_avx512(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t stride,
                                     int64_t lanes, float* scores, int64_t ld) {
  const auto mask = static_cast<__mmask16>(lanes >= 16 ? 0xFFFFu : (1u << lanes) - 1u);
  int64_t i = 0;
  for (; i + 4 <= nq; i += 4) key_scores_avx512<4>(q + i * hd, hd, kt, stride, mask, scores + i * ld, ld);
  switch (nq - i) {
    case 3: key_scores_avx512<3>(q + i * hd, hd, kt, stride, mask, scores + i * ld, ld); break;
    case 2: key_scores_avx512<2>(q + i * hd, hd, kt, stride, mask, scores + i * ld, ld); break;
    case 1: key_scores_avx512<1>(q + i * hd, hd, kt, stride, mask, scores + i * ld, ld); break;
    default: break;
  }
}

// weighted_values for NQ weight rows over 32 columns [d0, d0 + 32) of the values (masked past hd).
template <int NQ>
TROUPE_AVX512 void weighted_avx512(const float* p, int64_t ld, const float* const* v, int64_t count, int64_t d0,
                                   int64_t hd, float* out) {
  const int64_t left = hd - d0;
  const auto m0 = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
  const auto m1 = static_cast<__mmask16>(left >= 32 ? 0xFFFFu : left > 16 ? (1u << (left - 16)) - 1u : 0u);
  __m512 a0[NQ], a1[NQ];
  for (int i = 0; i < NQ; ++i) a0[i] = a1[i] = _mm512_setzero_ps();
  if (left >= 32) {
    for (int64_t j = 0; j < count; ++j) {
      const __m512 v0 = _mm512_loadu_ps(v[j] + d0), v1 = _mm512_loadu_ps(v[j] + d0 + 16);
      for (int i = 0; i < NQ; ++i) {
        const __m512 w = _mm512_set1_ps(p[i * ld + j]);
        a0[i] = _mm512_fmadd_ps(w, v0, a0[i]);
        a1[i] = _mm512_fmadd_ps(w, v1, a1[i]);
      }
    }
  } else {
    for (int64_t j = 0; j < count; ++j) {
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, v[j] + d0), v1 = _mm512_maskz_loadu_ps(m1, v[j] + d0 + 16);
      for (int i = 0; i < NQ; ++i) {
        const __m512 w = _mm512_set1_ps(p[i * ld + j]);
        a0[i] = _mm512_fmadd_ps(w, v0, a0[i]);
        a1[i] = _mm512_fmadd_ps(w, v1, a1[i]);
      }
    }
  }
  for (int i = 0; i < NQ; ++i) {
    _mm512_mask_storeu_ps(out + i * hd + d0, m0, a0[i]);
    _mm512_mask_storeu_ps(out + i * hd + d0 + 16, m1, a1[i]);
  }
}

TROUPE_AVX512 void weighted_values_avx512(const float* p, int64_t nq, int64_t ld, const float* const* v, int64_t count,
                                          int64_t hd, float* out) {
  for (int64_t d0 = 0; d0 < hd; d0 += 32) {
    int64_t i = 0;
    for (; i + 4 <= nq; i += 4) weighted_avx512<4>(p + i * ld, ld, v, count, d0, hd, out + i * hd);
    switch (nq - i) {
      case 3: weighted_avx512<3>(p + i * ld, ld, v, count, d0, hd, out + i * hd); break;
      case 2: weighted_avx512<2>(p + i * ld, ld, v, count, d0, hd, out + i * hd); break;
      case 1: weighted_avx512<1>(p + i * ld, ld, v, count, d0, hd, out + i * hd); break;
      default: break;
    }
  }
}

// exp(x) as models/kernels.cpp's exp_approx (Cephes' expf: x = n ln2 + r, degree-6 polynomial; 0 below -87).
TROUPE_AVX512 inline __m512 exp16(__m512 x) {
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), _mm512_mul_ps(p, _mm512_castsi512_ps(bits)));
}

// The sum of a vector's 16 lanes: halves added pairwise (8, 4, 2, 1), a fixed order.
TROUPE_AVX512 inline float hsum16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}

TROUPE_AVX512 float exp_sum_avx512(const float* x, int64_t n, float shift, float scale, float* out, float* block_sums) {
  const __m512 sv = _mm512_set1_ps(shift), kv = _mm512_set1_ps(scale);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), sv), kv));
    _mm512_storeu_ps(out + i, e);
    acc = _mm512_add_ps(acc, e);
    if (block_sums != nullptr) block_sums[i / 16] = hsum16(e);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 e =
        _mm512_maskz_mov_ps(m, exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sv), kv)));
    _mm512_mask_storeu_ps(out + i, m, e);
    acc = _mm512_add_ps(acc, e);
    if (block_sums != nullptr) block_sums[i / 16] = hsum16(e);
  }
  alignas(64) float p[16];
  _mm512_store_ps(p, acc);
  float s8[8], s4[4];
  for (int k = 0; k < 8; ++k) s8[k] = p[k] + p[k + 8];
  for (int k = 0; k < 4; ++k) s4[k] = s8[k] + s8[k + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

TROUPE_AVX512 void activation_avx512(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const auto m = static_cast<__mmask16>(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1u);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    __m512 y;
    if (up != nullptr) {  // g / (1 + e^-g) * u
      const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
      y = _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i));
    } else {  // 0.5 g (1 + tanh(z)), tanh(z) = 1 - 2 / (e^2z + 1)
      const __m512 z =
          _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                        _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), g), _mm512_mul_ps(g, g), g));
      const __m512 e = exp16(_mm512_add_ps(z, z));
      const __m512 t = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
      y = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), g), _mm512_add_ps(one, t));
    }
    _mm512_mask_storeu_ps(out + i, m, y);
  }
}

TROUPE_AVX512 float max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + i), m);  // a NaN in x keeps m
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    m = _mm512_mask_max_ps(m, k, _mm512_maskz_loadu_ps(k, x + i), m);
  }
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256(m), _mm512_extractf32x8_ps(m, 1));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_max_ss(q, _mm_shuffle_ps(q, q, 1)));
}

// ---- bf16 weights (AVX512_BF16) ---------------------------------------------------------------------------------

bool has_avx512_bf16() {
  static const bool yes = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
}

// gemm_tile with bf16 operands: the panels hold pairs (w[n, 2i], w[n, 2i + 1]) in each 32-bit lane, x its pairs,
// and each vdpbf16ps adds both products of a pair to the lane's fp32 sum: a chain over the pairs in order.
template <int MR, int NP>
TROUPE_AVX512_BF16 void gemm_tile_bf16(const uint32_t* x, int64_t Kp, const uint32_t* panels, const float* bias,
                                       float* y, int64_t ldy, int64_t n_valid) {
  __m512 acc[MR][NP];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  const int64_t stride = Kp * 16;
  for (int64_t k = 0; k < Kp; ++k) {
    __m512bh w[NP];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) w[p] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(panels + p * stride + k * 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh xb = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(x[r * Kp + k])));
#pragma GCC unroll 8
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_dpbf16_ps(acc[r][p], xb, w[p]);
    }
  }
  store_tile<MR, NP>(acc, nullptr, bias, y, ldy, n_valid);
}

void gemm_bf16(const uint32_t* x, int64_t M, int64_t Kp, const uint32_t* w, int64_t N, const float* bias, float* y,
               int64_t p0, int64_t p1) {
  panel_tiles(M, p0, p1, [&](auto mr, auto np, int64_t m, int64_t p) {
    gemm_tile_bf16<decltype(mr)::value, decltype(np)::value>(
        x + m * Kp, Kp, w + p * Kp * 16, bias != nullptr ? bias + p * 16 : nullptr, y + m * N + p * 16, N, N - p * 16);
  });
}

// Round to nearest even (NaN stays NaN), as vcvtneps2bf16 and ATen do.
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- AVX2 ---------------------------------------------------------------------------------------------------------

#define TROUPE_AVX2 __attribute__((target("avx2,fma")))

// The AVX2 form of gemm_tile: a panel is two 8-lane halves; the same chain per element, so the same bits.
template <int MR>
TROUPE_AVX2 void gemm_tile_avx2(const float* x, int64_t K, const float* panel, const float* bias, float* y, int64_t ldy,
                                int64_t n_valid) {
  __m256 lo[MR], hi[MR];
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 wl = _mm256_loadu_ps(panel + k * 16), wh = _mm256_loadu_ps(panel + k * 16 + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 xb = _mm256_set1_ps(x[r * K + k]);
      lo[r] = _mm256_fmadd_ps(xb, wl, lo[r]);
      hi[r] = _mm256_fmadd_ps(xb, wh, hi[r]);
    }
  }
  const int64_t cols = std::min<int64_t>(16, n_valid);
  for (int r = 0; r < MR; ++r) {
    alignas(32) float out[16];
    _mm256_store_ps(out, lo[r]);
    _mm256_store_ps(out + 8, hi[r]);
    for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = bias != nullptr ? out[c] + bias[c] : out[c];
  }
}

TROUPE_AVX2 void gemm_avx2(const float* x, int64_t M, int64_t K, const float* w, int64_t N, const float* bias, float* y,
                           int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * 16;
    const float* panel = w + p * K * 16;
    const float* b = bias != nullptr ? bias + n0 : nullptr;
    int64_t m = 0;
    for (; m + 6 <= M; m += 6) gemm_tile_avx2<6>(x + m * K, K, panel, b, y + m * N + n0, N, N - n0);
    for (; m < M; ++m) gemm_tile_avx2<1>(x + m * K, K, panel, b, y + m * N + n0, N, N - n0);
  }
}

// ---- portable ----------------------------------------------------------------------------------------------------

// gemm_avx512's chains one element at a time (so the same bits), for fp32 weights or int8 codes with their scale.
template <class W>
void gemm_scalar(const float* x, int64_t M, int64_t K, const W* w, const float* scale, int64_t N, const float* bias,
                 float* y, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t c = 0; c < 16 && p * 16 + c < N; ++c) {
      const int64_t n = p * 16 + c;
      for (int64_t m = 0; m < M; ++m) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc = std::fma(x[m * K + k], static_cast<float>(w[(p * K + k) * 16 + c]), acc);
        const float b = bias != nullptr ? bias[n] : 0.0f;
        y[m * N + n] = scale != nullptr ? std::fma(acc, scale[n], b) : bias != nullptr ? acc + b : acc;
      }
    }
}

// Packs rows w [N, K] into panels [ceil(N / 16), K, 16] (zeros past N).
template <class T>
void pack_rows(const T* w, int64_t N, int64_t K, T* out) {
  at::parallel_for(0, (N + 15) / 16, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < 16; ++c) {
          const int64_t n = p * 16 + c;
          out[(p * K + k) * 16 + c] = n < N ? w[n * K + k] : T{0};
        }
  });
}

}  // namespace

void force_isa(int level) { g_max_isa.store(level, std::memory_order_relaxed); }

void pack_panels(const float* w, int64_t N, int64_t K, float* out) { pack_rows(w, N, K, out); }

void linear(const float* x, int64_t M, int64_t K, const float* panels, int64_t N, const float* bias, float* y) {
  if (M == 0 || N == 0) return;
  const bool avx = has_avx512(), avx2 = has_avx2();
  for_panel_groups(M, K, N, avx ? panels_per_tile(M) : 1, int64_t{1} << 16, [&](int64_t p0, int64_t p1) {
    if (avx) {
      gemm_avx512(x, M, K, panels, nullptr, N, bias, y, p0, p1);
    } else if (avx2) {
      gemm_avx2(x, M, K, panels, N, bias, y, p0, p1);
    } else {
      gemm_scalar(x, M, K, panels, nullptr, N, bias, y, p0, p1);
    }
  });
}

void pack_panels_bf16(const uint16_t* w, int64_t N, int64_t K, uint32_t* out) {
  const int64_t panels = (N + 15) / 16, Kp = (K + 1) / 2;
  at::parallel_for(0, panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t i = 0; i < Kp; ++i)
        for (int64_t c = 0; c < 16; ++c) {
          const int64_t n = p * 16 + c;
          const uint32_t lo = n < N ? w[n * K + 2 * i] : 0u, hi = n < N && 2 * i + 1 < K ? w[n * K + 2 * i + 1] : 0u;
          out[(p * Kp + i) * 16 + c] = lo | (hi << 16);
        }
  });
}

void linear_bf16(const float* x, int64_t M, int64_t K, const uint32_t* panels, int64_t N, const float* bias, float* y) {
  if (M == 0 || N == 0) return;
  const int64_t Kp = (K + 1) / 2;
  std::vector<uint32_t> xb(static_cast<size_t>(M * Kp));  // x rounded to bf16, in pairs as the panels hold w
  at::parallel_for(0, M * Kp, 1 << 13, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t m = i / Kp, k = 2 * (i % Kp);
      const uint32_t lo = to_bf16(x[m * K + k]), hi = k + 1 < K ? to_bf16(x[m * K + k + 1]) : 0u;
      xb[static_cast<size_t>(i)] = lo | (hi << 16);
    }
  });
  const bool fast = has_avx512_bf16();
  for_panel_groups(M, K, N, fast ? panels_per_tile(M) : 1, int64_t{1} << 17, [&](int64_t p0, int64_t p1) {
    if (fast) {
      gemm_bf16(xb.data(), M, Kp, panels, N, bias, y, p0, p1);
      return;
    }
    // the same pairs in fp32 (products of bf16 values are exact): the high product, then the low one, as the
    // instruction's definition adds them
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t c = 0; c < 16 && p * 16 + c < N; ++c)
        for (int64_t m = 0; m < M; ++m) {
          float acc = 0.0f;
          for (int64_t i = 0; i < Kp; ++i) {
            const uint32_t a = xb[static_cast<size_t>(m * Kp + i)], b = panels[(p * Kp + i) * 16 + c];
            acc += from_bf16(static_cast<uint16_t>(a >> 16)) * from_bf16(static_cast<uint16_t>(b >> 16));
            acc += from_bf16(static_cast<uint16_t>(a & 0xFFFFu)) * from_bf16(static_cast<uint16_t>(b & 0xFFFFu));
          }
          y[m * N + p * 16 + c] = bias != nullptr ? acc + bias[p * 16 + c] : acc;
        }
  });
}

void pack_panels_int8(const int8_t* w, int64_t N, int64_t K, int8_t* out) { pack_rows(w, N, K, out); }

void linear_int8(const float* x, int64_t M, int64_t K, const int8_t* panels, const float* scale, int64_t N,
                 const float* bias, float* y) {
  if (M == 0 || N == 0) return;
  const bool avx = has_avx512();
  for_panel_groups(M, K, N, avx ? panels_per_tile(M) : 1, int64_t{1} << 16, [&](int64_t p0, int64_t p1) {
    if (avx) {
      gemm_avx512(x, M, K, panels, scale, N, bias, y, p0, p1);
    } else {
      gemm_scalar(x, M, K, panels, scale, N, bias, y, p0, p1);
    }
  });
}

float exp_sum(const float* x, int64_t n, float shift, float scale, float* out, float* block_sums) {
  if (has_avx512()) return exp_sum_avx512(x, n, shift, scale, out, block_sums);
  float total = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = std::exp((x[i] - shift) * scale);
    total += out[i];
  }
  if (block_sums != nullptr)
    for (int64_t b = 0; b * 16 < n; ++b) {
      float sum = 0.0f;
      for (int64_t i = b * 16; i < std::min(n, b * 16 + 16); ++i) sum += out[i];
      block_sums[b] = sum;
    }
  return total;
}

void activation(const float* gate, const float* up, int64_t n, float* out) {
  if (has_avx512()) {
    activation_avx512(gate, up, n, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = up != nullptr ? g / (1.0f + std::exp(-g)) * up[i]
                           : 0.5f * g * (1.0f + std::tanh(0.7978845608028654f * (g + 0.044715f * g * g * g)));
  }
}

float max_value(const float* x, int64_t n) {
  if (has_avx512()) return max_avx512(x, n);
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > m) m = x[i];
  return m;
}

void key_scores(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t stride, int64_t lanes, float* scores,
                int64_t ld) {
  if (has_avx512()) {
    key_scores_avx512(q, nq, hd, kt, stride, lanes, scores, ld);
    return;
  }
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < lanes; ++j) {
      float acc = 0.0f;
      for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[i * hd + d], kt[d * stride + j], acc);
      scores[i * ld + j] = acc;
    }
}

void weighted_values(const float* p, int64_t nq, int64_t ld, const float* const* v, int64_t count, int64_t hd,
                     float* out) {
  if (has_avx512()) {
    weighted_values_avx512(p, nq, ld, v, count, hd, out);
    return;
  }
  for (int64_t i = 0; i < nq; ++i) {
    float* o = out + i * hd;
    std::fill_n(o, hd, 0.0f);
    for (int64_t j = 0; j < count; ++j)
      for (int64_t d = 0; d < hd; ++d) o[d] = std::fma(p[i * ld + j], v[j][d], o[d]);
  }
}

void norm_row(const float* x, int64_t C, const float* w, const float* b, double eps, bool layer_norm, float* y) {
  double mean = 0.0;
  if (layer_norm) {
    for (int64_t i = 0; i < C; ++i) mean += x[i];
    mean /= static_cast<double>(C);
  }
  double sq = 0.0;
  for (int64_t i = 0; i < C; ++i) {
    const double d = x[i] - mean;
    sq += d * d;
  }
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(C) + eps);
  for (int64_t i = 0; i < C; ++i) {
    const float normed = static_cast<float>((x[i] - mean) * inv);
    y[i] = normed * w[i] + (b != nullptr ? b[i] : 0.0f);
  }
}

}  // namespace troupe::models::engine_kernels
