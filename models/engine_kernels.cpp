// Implementation of models/engine_kernels.h: an AVX-512 path (16-lane partial sums per output element, a register
// tile of up to 4 rows x 4 columns) and a scalar path with the same 16 partial sums, picked once per process.
#include "models/engine_kernels.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#define TROUPE_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

namespace troupe::models::engine_kernels {

namespace {

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return yes;
}

// ---- AVX-512 -----------------------------------------------------------------------------------------------------

TROUPE_AVX512 inline float reduce16(__m512 v) {
  // fixed tree: 16 -> 8 -> 4 -> 2 -> 1, the same as dot_scalar's
  alignas(64) float p[16];
  _mm512_store_ps(p, v);
  float s8[8], s4[4];
  for (int i = 0; i < 8; ++i) s8[i] = p[i] + p[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// A tile of MR rows x NR columns: acc[i][j] accumulates x[i] . w[j] chunk by chunk over k; the k tail is a masked
// chunk. Every element sees the same sequence of FMAs whatever the tile shape.
template <int MR, int NR>
TROUPE_AVX512 void tile_avx512(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, const float* bias,
                               float* y, int64_t ldy) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_ps(w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_ps(m, w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = reduce16(acc[i][j]) + (bias != nullptr ? bias[j] : 0.0f);
}

template <int NR>
TROUPE_AVX512 void rows_avx512(const float* x, int64_t M, int64_t K, const float* w, const float* bias, float* y,
                               int64_t N) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile_avx512<4, NR>(x + m * K, K, w, K, K, bias, y + m * N, N);
  switch (M - m) {
    case 3: tile_avx512<3, NR>(x + m * K, K, w, K, K, bias, y + m * N, N); break;
    case 2: tile_avx512<2, NR>(x + m * K, K, w, K, K, bias, y + m * N, N); break;
    case 1: tile_avx512<1, NR>(x + m * K, K, w, K, K, bias, y + m * N, N); break;
    default: break;
  }
}

// Columns [n0, n1) of y for all rows, in column tiles of 4 (then 1), rows in tiles of 4 within a block of
// kRowBlock rows (the block's x rows stay in L1/L2 while the column tile's weights stream).
TROUPE_AVX512 void columns_avx512(const float* x, int64_t M, int64_t K, const float* w, int64_t N, const float* bias,
                                  float* y, int64_t n0, int64_t n1) {
  constexpr int64_t kRowBlock = 64;
  for (int64_t r0 = 0; r0 < M; r0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, M - r0);
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4)
      rows_avx512<4>(x + r0 * K, rows, K, w + n * K, bias != nullptr ? bias + n : nullptr, y + r0 * N + n, N);
    for (; n < n1; ++n)
      rows_avx512<1>(x + r0 * K, rows, K, w + n * K, bias != nullptr ? bias + n : nullptr, y + r0 * N + n, N);
  }
}

TROUPE_AVX512 float dot_avx512(const float* a, const float* b, int64_t n) {
  float out;
  tile_avx512<1, 1>(a, n, b, n, n, nullptr, &out, 1);
  return out;
}

TROUPE_AVX512 void axpy_avx512(float a, const float* x, float* y, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

// ---- portable ----------------------------------------------------------------------------------------------------

float dot_scalar(const float* a, const float* b, int64_t n) {
  float part[16] = {};
  for (int64_t k = 0; k < n; ++k) part[k % 16] = std::fma(a[k], b[k], part[k % 16]);
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = part[i] + part[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];  // (s4[0] + s4[2]) + (s4[1] + s4[3]), as reduce16
}

void columns_scalar(const float* x, int64_t M, int64_t K, const float* w, int64_t N, const float* bias, float* y,
                    int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = n0; n < n1; ++n) y[m * N + n] = dot_scalar(x + m * K, w + n * K, K) + (bias ? bias[n] : 0.0f);
}

}  // namespace

void linear(const float* x, int64_t M, int64_t K, const float* w, int64_t N, const float* bias, float* y) {
  if (M == 0 || N == 0) return;
  // blocks of 16 columns; at least ~64k multiply-adds per task, so that small matrices stay on one thread
  const int64_t block_work = 16 * M * K;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, block_work));
  const bool avx = has_avx512();
  at::parallel_for(0, (N + 15) / 16, grain, [&](int64_t b0, int64_t b1) {
    const int64_t n0 = b0 * 16, n1 = std::min(N, b1 * 16);
    if (avx) {
      columns_avx512(x, M, K, w, N, bias, y, n0, n1);
    } else {
      columns_scalar(x, M, K, w, N, bias, y, n0, n1);
    }
  });
}

float dot(const float* a, const float* b, int64_t n) {
  return has_avx512() ? dot_avx512(a, b, n) : dot_scalar(a, b, n);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  if (has_avx512()) {
    axpy_avx512(a, x, y, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
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
