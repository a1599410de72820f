// CPU kernels for quantized weights (formats: models/quant.h): batch-1 decode GEMVs that read the packed codes
// directly (AVX-512 where the CPU has it, with a portable fallback chosen at run time), and the dynamic int8
// product with int8 activations per row (VNNI dot products where the CPU has them). Every kernel splits the
// weight's rows over ATen's intra-op threads; each output element is a fixed-order sum, so results do not depend
// on the thread count. Raw pointers to contiguous CPU memory; the shape checks are the caller's (models/quant.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace troupe::models::quant_kernels {

// What the running CPU offers ("avx512" = AVX-512 F/BW/VL, "vnni" = AVX-512 VNNI), and which path each kernel
// takes here ("avx512-vnni", "avx512" or "scalar"; there is no AVX2 path yet), for `troupe info` and the benchmark.
bool cpu_has_avx512();
bool cpu_has_vnni();
std::string kernel_path();

// Test and benchmark hook: the most capable path the kernels may take (default kAvx512Vnni, i.e. whatever the CPU
// offers). kScalar checks the portable fallback against the vector code on an AVX-512 machine, kAvx512 the dynamic
// product without VNNI. Process-wide; change it only while no kernel runs.
enum class KernelPath { kScalar, kAvx512, kAvx512Vnni };
void set_max_path(KernelPath path);

// y[r] = sum_c (q[r, c] * scale[r]) x[c] + bias[r]   (int8 weight-only; bias may be null)
void int8_gemv(const int8_t* q, const float* scale, int64_t rows, int64_t cols, const float* x, const float* bias,
               float* y);

// y[r] = sum_c (code(r, c) * scale[r, g] + minimum[r, g]) x[c] + bias[r],  g = c / group   (int4 weight-only)
// packed [rows, cols / 2], column 2j in the high nibble of byte j of the row, 2j + 1 in the low nibble.
// On a CPU with AVX512-BF16 and groups of a multiple of 64 (and the default path cap), the products are bf16 dot
// products of the codes (exact) with x split into two bf16 pieces: each term within 2^-17 of code * x relative.
// The AVX-512 path needs group % 32 == 0 (32, 64, 128 ...); other groups take the scalar path.
void int4_gemv(const uint8_t* packed, const float* scale, const float* minimum, int64_t rows, int64_t cols,
               int64_t group, const float* x, const float* bias, float* y);

// y[r] = sum_c nf4[code(r, c)] * absmax[(r * cols + c) / block] x[c] + bias[r]   (NF4, bitsandbytes' packing:
// flat element 2j in the high nibble of byte j; block divides cols; AVX-512 for block % 32 == 0, as int4_gemv)
void nf4_gemv(const uint8_t* packed, const float* absmax, const float* code_book, int64_t rows, int64_t cols,
              int64_t block, const float* x, const float* bias, float* y);

// Dynamic int8: y[m, r] = sx[m] * scale[r] * sum_c xq[m, c] q[r, c] + bias[r], where each row of x [m, cols] is
// quantized symmetrically on the fly, sx[m] = max_c |x[m, c]| / 127, xq = round(x / sx) (an all-zero row gives 0).
// row_sums[r] = sum_c q[r, c] (precomputed once per weight: the VNNI path adds 128 to xq to make it unsigned).
void int8_dynamic_gemm(const int8_t* q, const float* scale, const int32_t* row_sums, int64_t rows, int64_t cols,
                       const float* x, int64_t m, const float* bias, float* y);

}  // namespace troupe::models::quant_kernels
