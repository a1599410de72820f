// Implementation of models/quant_kernels.h: AVX-512 kernels written with intrinsics, each function compiled for its
// instruction set by a target attribute (not by flags on the file) and picked at run time, plus a plain scalar
// reference of the same math (also what CPUs without AVX-512 run: there is no AVX2 path yet). Not a general GEMM: the
// weight-only kernels are batch-1 GEMVs.

// GCC 12 warns that the AVX-512 intrinsics' own _mm512_undefined_* operands are uninitialised when inlined at -O3
// (GCC bug 105593, fixed in 13); the warning is in GCC's headers, so it is silenced for this file from its first
// include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "models/quant_kernels.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#define TROUPE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define TROUPE_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

namespace troupe::models::quant_kernels {

namespace {

// Rows per step of the vector kernels: one load of x (or of its int8 codes) serves this many weight rows.
constexpr int64_t kRowBlock = 4;
// Rows per thread at least (a multiple of kRowBlock): 768 rows still give both of 2 threads work, while an 8-row
// matrix stays on one thread (starting a task costs a few microseconds).
constexpr int64_t kRowGrain = 64;
// Software prefetch distance past the start of a block's last row (bytes); see prefetch_stream.
constexpr int64_t kPrefetchAhead = 4096;

std::atomic<KernelPath> g_max_path{KernelPath::kAvx512Vnni};

KernelPath hardware_path() {
  static const KernelPath path = cpu_has_vnni()     ? KernelPath::kAvx512Vnni
                                 : cpu_has_avx512() ? KernelPath::kAvx512
                                                    : KernelPath::kScalar;
  return path;
}

KernelPath active_path() { return std::min(hardware_path(), g_max_path.load(std::memory_order_relaxed)); }

// f(r0, r1) over [0, rows) on ATen's intra-op threads, in ranges of whole kRowBlock blocks. Each output row is
// computed by the same instructions whichever range holds it, so the thread count never changes a result.
template <class F>
void for_row_ranges(int64_t rows, const F& f) {
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  at::parallel_for(0, blocks, kRowGrain / kRowBlock,
                   [&](int64_t b0, int64_t b1) { f(b0 * kRowBlock, std::min(rows, b1 * kRowBlock)); });
}

// ---------------------------------------------------------------------------------------------------------------
// Scalar reference: sums in column order, one row at a time. Same formulas as the vector code below.

void int8_gemv_scalar(const int8_t* q, const float* scale, int64_t cols, const float* x, const float* bias, float* y,
                      int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    float sum = 0.0f;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<float>(q[r * cols + c]) * x[c];
    y[r] = sum * scale[r] + (bias ? bias[r] : 0.0f);
  }
}

// The 4-bit kernels share one form: code k of row r, group g stands for book[k] * a[r, g] + b[r, g] (int4: book =
// 0..15, a = scale, b = minimum; nf4: book = the NF4 levels, a = absmax, no b).
struct Nibbles {
  const uint8_t* packed;  // [rows, cols / 2], column 2j in the high nibble of byte j
  const float* book;      // [16]
  const float* a;         // [rows, cols / group]
  const float* b;         // [rows, cols / group] or null (= 0)
  int64_t cols, group;
};

float nibble_level(const Nibbles& w, int code, int64_t idx) {
  return w.b ? std::fma(w.book[code], w.a[idx], w.b[idx]) : w.book[code] * w.a[idx];
}

void nibble_gemv_scalar(const Nibbles& w, const float* x, const float* bias, float* y, int64_t r0, int64_t r1) {
  const int64_t groups = w.cols / w.group;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.packed + r * (w.cols / 2);
    float sum = 0.0f;
    for (int64_t c = 0; c < w.cols; ++c) {
      const int code = c % 2 == 0 ? row[c / 2] >> 4 : row[c / 2] & 15;
      sum += nibble_level(w, code, r * groups + c / w.group) * x[c];
    }
    y[r] = sum + (bias ? bias[r] : 0.0f);
  }
}

// The int8 dot products of the dynamic product (exact in every path), scaled once per output.
void finish_dynamic(int64_t dot, float sx, float scale, const float* bias, int64_t r, float* y) {
  *y = std::fma(static_cast<float>(dot), sx * scale, bias ? bias[r] : 0.0f);
}

void dynamic_gemm_scalar(const int8_t* q, const float* scale, int64_t cols, const int8_t* xq, const float* sx,
                         int64_t m, int64_t rows, const float* bias, float* y, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t = 0; t < m; ++t) {
      int64_t dot = 0;
      for (int64_t c = 0; c < cols; ++c) dot += int64_t{q[r * cols + c]} * xq[t * cols + c];
      finish_dynamic(dot, sx[t], scale[r], bias, r, y + t * rows + r);
    }
  }
}

// sx[t] = max_c |x[t, c]| / 127, xq[t, c] = nearbyint(x[t, c] / sx[t]) (ties to even, as torch's quantize);
// scalar in every path (m * cols divisions, against rows * m * cols multiply-adds after it).
void quantize_activations(const float* x, int64_t m, int64_t cols, int8_t* xq, float* sx) {
  for (int64_t t = 0; t < m; ++t) {
    const float* xt = x + t * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(xt[c]));
    sx[t] = amax / 127.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = amax > 0.0f ? std::nearbyint(xt[c] / sx[t]) : 0.0f;
      xq[t * cols + c] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// AVX-512. Each row keeps two 16-lane accumulators (two FMA chains in flight), added and reduced once at the end in
// a fixed order; R rows run side by side and share every load of x.

// Rows read side by side are short streams (768 bytes per int8 row of GPT-2's c_fc) that the hardware prefetcher
// follows poorly from DRAM: 4 rows at once read the int8 LM head at ~4 GB/s, one row at a time at ~20. A block's
// rows are contiguous, so the kernels prefetch the block as one linear stream that starts kPrefetchAhead bytes past
// the start of its last row and advances R bytes per byte each row consumes: every row's data is fetched before its
// reads, the stream runs on into the next block, and a prefetch past the matrix is harmless (it never faults). Into
// L2: L1 (32 KiB) would lose the block being read.
TROUPE_AVX512 inline void prefetch_stream(const char* p, int64_t bytes) {
  for (int64_t k = 0; k < bytes; k += 64) _mm_prefetch(p + k, _MM_HINT_T1);
}

template <int R>
const char* stream_start(const void* block, int64_t row_bytes) {
  return static_cast<const char*>(block) + (R - 1) * row_bytes + kPrefetchAhead;
}

TROUPE_AVX512 inline __m512 widen_i8(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

template <int R>
TROUPE_AVX512 void int8_rows_avx512(const int8_t* q, const float* scale, int64_t cols, const float* x,
                                    const float* bias, float* y, int64_t r0) {
  __m512 acc0[R], acc1[R];
  const int8_t* row[R];
  for (int i = 0; i < R; ++i) {
    acc0[i] = acc1[i] = _mm512_setzero_ps();
    row[i] = q + (r0 + i) * cols;
  }
  const char* ahead = stream_start<R>(row[0], cols);
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    prefetch_stream(ahead + R * c, R * 32);
    const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
    for (int i = 0; i < R; ++i) {
      acc0[i] = _mm512_fmadd_ps(widen_i8(row[i] + c), x0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(widen_i8(row[i] + c + 16), x1, acc1[i]);
    }
  }
  if (c + 16 <= cols) {
    const __m512 x0 = _mm512_loadu_ps(x + c);
    for (int i = 0; i < R; ++i) acc0[i] = _mm512_fmadd_ps(widen_i8(row[i] + c), x0, acc0[i]);
    c += 16;
  }
  if (c < cols) {  // masked tail: lanes past the row read nothing and add 0
    const __mmask16 mask = static_cast<__mmask16>((1u << (cols - c)) - 1);
    const __m512 x1 = _mm512_maskz_loadu_ps(mask, x + c);
    for (int i = 0; i < R; ++i) {
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, row[i] + c)));
      acc1[i] = _mm512_fmadd_ps(w, x1, acc1[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i]));
    y[r0 + i] = sum * scale[r0 + i] + (bias ? bias[r0 + i] : 0.0f);
  }
}

TROUPE_AVX512 void int8_gemv_avx512(const int8_t* q, const float* scale, int64_t cols, const float* x,
                                    const float* bias, float* y, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) int8_rows_avx512<4>(q, scale, cols, x, bias, y, r);
  for (; r < r1; ++r) int8_rows_avx512<1>(q, scale, cols, x, bias, y, r);
}

// 4-bit rows. x comes de-interleaved per 32 columns (xd[c + k] = x[c + 2k], xd[c + 16 + k] = x[c + 2k + 1], k <
// 16), so that 16 packed bytes widened to 16 dwords give the even columns' codes after a shift by 4 and the odd
// columns' codes as they are: vpermps reads only the low 4 bits of each index, so each code becomes its level in
// one instruction, from a 16-entry table (book * a + b) built once per row and group. Needs group % 32 == 0.
template <int R>
TROUPE_AVX512 void nibble_rows_avx512(const Nibbles& w, const float* xd, const float* bias, float* y, int64_t r0) {
  const int64_t groups = w.cols / w.group;
  const __m512 book = _mm512_loadu_ps(w.book);
  __m512 acc_even[R], acc_odd[R];
  const uint8_t* row[R];
  for (int i = 0; i < R; ++i) {
    acc_even[i] = acc_odd[i] = _mm512_setzero_ps();
    row[i] = w.packed + (r0 + i) * (w.cols / 2);
  }
  const char* ahead = stream_start<R>(row[0], w.cols / 2);
  for (int64_t g = 0; g < groups; ++g) {
    __m512 table[R];
    for (int i = 0; i < R; ++i) {
      const int64_t idx = (r0 + i) * groups + g;
      const __m512 a = _mm512_set1_ps(w.a[idx]);
      table[i] = w.b ? _mm512_fmadd_ps(book, a, _mm512_set1_ps(w.b[idx])) : _mm512_mul_ps(book, a);
    }
    for (int64_t c = g * w.group; c < (g + 1) * w.group; c += 32) {
      const int64_t byte = c / 2;
      prefetch_stream(ahead + R * byte, R * 16);
      const __m512 x_even = _mm512_loadu_ps(xd + c), x_odd = _mm512_loadu_ps(xd + c + 16);
      for (int i = 0; i < R; ++i) {
        const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row[i] + byte)));
        const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table[i]);
        const __m512 lo = _mm512_permutexvar_ps(bytes, table[i]);
        acc_even[i] = _mm512_fmadd_ps(hi, x_even, acc_even[i]);
        acc_odd[i] = _mm512_fmadd_ps(lo, x_odd, acc_odd[i]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc_even[i], acc_odd[i]));
    y[r0 + i] = sum + (bias ? bias[r0 + i] : 0.0f);
  }
}

TROUPE_AVX512 void nibble_gemv_avx512(const Nibbles& w, const float* xd, const float* bias, float* y, int64_t r0,
                                      int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) nibble_rows_avx512<4>(w, xd, bias, y, r);
  for (; r < r1; ++r) nibble_rows_avx512<1>(w, xd, bias, y, r);
}

std::vector<float> deinterleave_pairs(const float* x, int64_t cols) {
  std::vector<float> xd(cols);
  for (int64_t c = 0; c < cols; c += 32) {
    for (int64_t k = 0; k < 16; ++k) {
      xd[c + k] = x[c + 2 * k];
      xd[c + 16 + k] = x[c + 2 * k + 1];
    }
  }
  return xd;
}

// Dynamic int8 with VNNI: vpdpbusd multiplies unsigned by signed bytes, so the activations go in as xq + 128
// (xq ^ 0x80) and 128 * row_sums[r] comes off the sum. Padding lanes of the tail load q = 0 and add nothing.
template <int R>
TROUPE_AVX512_VNNI void dynamic_rows_vnni(const int8_t* q, const int32_t* row_sums, int64_t cols, const int8_t* xq,
                                          int64_t r0, bool prefetch, int64_t* dots) {
  __m512i acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const char* ahead = stream_start<R>(q + r0 * cols, cols);
  for (int64_t c = 0; c < cols; c += 64) {
    if (prefetch) prefetch_stream(ahead + R * c, R * 64);
    const __mmask64 mask = cols - c >= 64 ? ~__mmask64{0} : (__mmask64{1} << (cols - c)) - 1;
    const __m512i xu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, xq + c), flip);
    for (int i = 0; i < R; ++i)
      acc[i] = _mm512_dpbusd_epi32(acc[i], xu, _mm512_maskz_loadu_epi8(mask, q + (r0 + i) * cols + c));
  }
  for (int i = 0; i < R; ++i) dots[i] = int64_t{_mm512_reduce_add_epi32(acc[i])} - 128 * int64_t{row_sums[r0 + i]};
}

// Dynamic int8 without VNNI: bytes widened to int16 and vpmaddwd (pairs of int16 products into int32; exact).
template <int R>
TROUPE_AVX512 void dynamic_rows_avx512(const int8_t* q, const int32_t* /*row_sums*/, int64_t cols, const int8_t* xq,
                                       int64_t r0, bool prefetch, int64_t* dots) {
  __m512i acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_si512();
  const char* ahead = stream_start<R>(q + r0 * cols, cols);
  for (int64_t c = 0; c < cols; c += 32) {
    if (prefetch) prefetch_stream(ahead + R * c, R * 32);
    const __mmask32 mask = cols - c >= 32 ? ~__mmask32{0} : (__mmask32{1} << (cols - c)) - 1;
    const __m512i xw = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, xq + c));
    for (int i = 0; i < R; ++i) {
      const __m512i qw = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, q + (r0 + i) * cols + c));
      acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(qw, xw));
    }
  }
  for (int i = 0; i < R; ++i) dots[i] = _mm512_reduce_add_epi32(acc[i]);
}

// One weight block of R rows against every activation row (the block stays in L1 across the m rows of x, so only
// the first pass prefetches).
template <int R, bool kVnni>
void dynamic_block(const int8_t* q, const float* scale, const int32_t* row_sums, int64_t rows, int64_t cols,
                   const int8_t* xq, const float* sx, int64_t m, const float* bias, float* y, int64_t r0) {
  int64_t dots[R];
  for (int64_t t = 0; t < m; ++t) {
    if constexpr (kVnni) {
      dynamic_rows_vnni<R>(q, row_sums, cols, xq + t * cols, r0, t == 0, dots);
    } else {
      dynamic_rows_avx512<R>(q, row_sums, cols, xq + t * cols, r0, t == 0, dots);
    }
    for (int i = 0; i < R; ++i) finish_dynamic(dots[i], sx[t], scale[r0 + i], bias, r0 + i, y + t * rows + r0 + i);
  }
}

template <bool kVnni>
void dynamic_gemm_vector(const int8_t* q, const float* scale, const int32_t* row_sums, int64_t rows, int64_t cols,
                         const int8_t* xq, const float* sx, int64_t m, const float* bias, float* y, int64_t r0,
                         int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) dynamic_block<4, kVnni>(q, scale, row_sums, rows, cols, xq, sx, m, bias, y, r);
  for (; r < r1; ++r) dynamic_block<1, kVnni>(q, scale, row_sums, rows, cols, xq, sx, m, bias, y, r);
}

// int4 on AVX512-BF16: the codes are integers 0..15, exact in bf16, and x is split into two bf16 pieces per element
// (hi = bf16(x), lo = bf16(x - hi): 16 significant bits, |x - hi - lo| <= 2^-17 |x|), so vdpbf16ps forms code * x
// with a relative error below 2^-17 per term, in two dot-product instructions per 32 codes and piece instead of
// widen + lookup + FMA per 16. Per group the integer-weighted sum is scaled once (acc += scale * part) and the
// minimum's share, min * sum(x over the group), is added from sums precomputed per call. Needs group % 64 == 0.
struct Bf16Split {
  std::vector<uint16_t> even_hi, even_lo, odd_hi, odd_lo;  // per 64-column block: x[c + 2j] / x[c + 2j + 1], j < 32
  std::vector<float> group_sum;                            // sum of x over each group, in column order
};

uint16_t to_bf16(float v) {  // round to nearest even (finite inputs)
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

Bf16Split split_bf16(const float* x, int64_t cols, int64_t group) {
  Bf16Split s;
  const size_t half = static_cast<size_t>(cols / 2);
  s.even_hi.resize(half);
  s.even_lo.resize(half);
  s.odd_hi.resize(half);
  s.odd_lo.resize(half);
  for (int64_t c = 0; c < cols; c += 2) {
    const size_t j = static_cast<size_t>(c / 2);
    const uint16_t eh = to_bf16(x[c]), oh = to_bf16(x[c + 1]);
    s.even_hi[j] = eh;
    s.odd_hi[j] = oh;
    s.even_lo[j] = to_bf16(x[c] - from_bf16(eh));
    s.odd_lo[j] = to_bf16(x[c + 1] - from_bf16(oh));
  }
  for (int64_t g = 0; g < cols / group; ++g) {
    float sum = 0;
    for (int64_t c = g * group; c < (g + 1) * group; ++c) sum += x[c];
    s.group_sum.push_back(sum);
  }
  return s;
}

#define TROUPE_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

template <int R>
TROUPE_AVX512_BF16 void int4_rows_bf16(const Nibbles& w, const Bf16Split& xs, const float* bias, float* y, int64_t r0) {
  const int64_t groups = w.cols / w.group;
  // bf16 of the integers 0..15 (vpermw reads the low 5 bits of each index; codes are < 16)
  alignas(64) uint16_t book[32] = {};
  for (int k = 0; k < 16; ++k) book[k] = to_bf16(static_cast<float>(k));
  const __m512i table = _mm512_load_si512(book);
  const __m512i low4 = _mm512_set1_epi16(0x0F);
  __m512 acc[R];
  float shift[R];
  const uint8_t* row[R];
  for (int i = 0; i < R; ++i) {
    acc[i] = _mm512_setzero_ps();
    shift[i] = 0;
    row[i] = w.packed + (r0 + i) * (w.cols / 2);
  }
  const char* ahead = stream_start<R>(row[0], w.cols / 2);
  for (int64_t g = 0; g < groups; ++g) {
    __m512 part[R];
    for (int i = 0; i < R; ++i) part[i] = _mm512_setzero_ps();
    for (int64_t c = g * w.group; c < (g + 1) * w.group; c += 64) {
      const int64_t byte = c / 2;
      prefetch_stream(ahead + R * byte, R * 32);
      const __m512bh eh = (__m512bh)_mm512_loadu_si512(xs.even_hi.data() + byte);
      const __m512bh el = (__m512bh)_mm512_loadu_si512(xs.even_lo.data() + byte);
      const __m512bh oh = (__m512bh)_mm512_loadu_si512(xs.odd_hi.data() + byte);
      const __m512bh ol = (__m512bh)_mm512_loadu_si512(xs.odd_lo.data() + byte);
      for (int i = 0; i < R; ++i) {
        const __m512i words = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[i] + byte)));
        const __m512bh hi = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(words, 4), table);
        const __m512bh lo = (__m512bh)_mm512_permutexvar_epi16(_mm512_and_si512(words, low4), table);
        part[i] = _mm512_dpbf16_ps(part[i], hi, eh);
        part[i] = _mm512_dpbf16_ps(part[i], lo, oh);
        part[i] = _mm512_dpbf16_ps(part[i], hi, el);
        part[i] = _mm512_dpbf16_ps(part[i], lo, ol);
      }
    }
    for (int i = 0; i < R; ++i) {
      const int64_t idx = (r0 + i) * groups + g;
      acc[i] = _mm512_fmadd_ps(part[i], _mm512_set1_ps(w.a[idx]), acc[i]);
      if (w.b) shift[i] += w.b[idx] * xs.group_sum[static_cast<size_t>(g)];
    }
  }
  for (int i = 0; i < R; ++i) y[r0 + i] = _mm512_reduce_add_ps(acc[i]) + shift[i] + (bias ? bias[r0 + i] : 0.0f);
}

TROUPE_AVX512_BF16 void int4_gemv_bf16(const Nibbles& w, const Bf16Split& xs, const float* bias, float* y, int64_t r0,
                                       int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) int4_rows_bf16<4>(w, xs, bias, y, r);
  for (; r < r1; ++r) int4_rows_bf16<1>(w, xs, bias, y, r);
}

bool cpu_has_avx512_bf16() { return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16"); }

void nibble_gemv(const Nibbles& w, int64_t rows, const float* x, const float* bias, float* y) {
  if (active_path() == KernelPath::kScalar || w.group % 32 != 0) {
    for_row_ranges(rows, [&](int64_t r0, int64_t r1) { nibble_gemv_scalar(w, x, bias, y, r0, r1); });
    return;
  }
  const std::vector<float> xd = deinterleave_pairs(x, w.cols);
  for_row_ranges(rows, [&](int64_t r0, int64_t r1) { nibble_gemv_avx512(w, xd.data(), bias, y, r0, r1); });
}

constexpr float kInt4Book[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

}  // namespace

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

bool cpu_has_vnni() { return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni"); }

std::string kernel_path() {
  switch (active_path()) {
    case KernelPath::kAvx512Vnni: return "avx512-vnni";
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kScalar: break;
  }
  return "scalar";
}

void set_max_path(KernelPath path) { g_max_path.store(path, std::memory_order_relaxed); }

void int8_gemv(const int8_t* q, const float* scale, int64_t rows, int64_t cols, const float* x, const float* bias,
               float* y) {
  const bool vector = active_path() != KernelPath::kScalar;
  for_row_ranges(rows, [&](int64_t r0, int64_t r1) {
    if (vector) {
      int8_gemv_avx512(q, scale, cols, x, bias, y, r0, r1);
    } else {
      int8_gemv_scalar(q, scale, cols, x, bias, y, r0, r1);
    }
  });
}

void int4_gemv(const uint8_t* packed, const float* scale, const float* minimum, int64_t rows, int64_t cols,
               int64_t group, const float* x, const float* bias, float* y) {
  const Nibbles w{packed, kInt4Book, scale, minimum, cols, group};
  if (active_path() == KernelPath::kAvx512Vnni && group % 64 == 0 && cpu_has_avx512_bf16()) {
    const Bf16Split xs = split_bf16(x, cols, group);
    for_row_ranges(rows, [&](int64_t r0, int64_t r1) { int4_gemv_bf16(w, xs, bias, y, r0, r1); });
    return;
  }
  nibble_gemv(w, rows, x, bias, y);
}

void nf4_gemv(const uint8_t* packed, const float* absmax, const float* code_book, int64_t rows, int64_t cols,
              int64_t block, const float* x, const float* bias, float* y) {
  nibble_gemv(Nibbles{packed, code_book, absmax, nullptr, cols, block}, rows, x, bias, y);
}

void int8_dynamic_gemm(const int8_t* q, const float* scale, const int32_t* row_sums, int64_t rows, int64_t cols,
                       const float* x, int64_t m, const float* bias, float* y) {
  std::vector<int8_t> xq(m * cols);
  std::vector<float> sx(m);
  quantize_activations(x, m, cols, xq.data(), sx.data());
  const KernelPath path = active_path();
  for_row_ranges(rows, [&](int64_t r0, int64_t r1) {
    switch (path) {
      case KernelPath::kAvx512Vnni:
        dynamic_gemm_vector<true>(q, scale, row_sums, rows, cols, xq.data(), sx.data(), m, bias, y, r0, r1);
        break;
      case KernelPath::kAvx512:
        dynamic_gemm_vector<false>(q, scale, row_sums, rows, cols, xq.data(), sx.data(), m, bias, y, r0, r1);
        break;
      case KernelPath::kScalar:
        dynamic_gemm_scalar(q, scale, cols, xq.data(), sx.data(), m, rows, bias, y, r0, r1);
        break;
    }
  });
}

}  // namespace troupe::models::quant_kernels
