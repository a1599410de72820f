// Tests for models/quant_kernels.h: hand-computed small cases, each GEMV against torch on the dequantized weight
// (random codes, odd shapes, with and without bias), bit-equal results at 1 and 2 threads, the scalar fallback
// against the vector path, and the dynamic int8 product against torch's quantized::linear_dynamic. The benchmark
// at the end is DISABLED_ (run it with --gtest_also_run_disabled_tests); it asserts nothing.
#include "models/quant_kernels.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "bench/stats.h"
#include "models/quant.h"

namespace troupe::models::quant_kernels {
namespace {

// bitsandbytes' NF4 levels, the library's own table (models/quant.h).
const std::vector<float> kNf4(models::nf4_code_book().begin(), models::nf4_code_book().end());

// Restores the kernel path and ATen's thread count when a test ends.
struct KernelStateGuard {
  int threads = at::get_num_threads();
  ~KernelStateGuard() {
    set_max_path(KernelPath::kAvx512Vnni);
    at::set_num_threads(threads);
  }
};

const float* ptr_or_null(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// A GEMV under test: the weight it stands for (fp64 [rows, cols]) and a call y = W x + b on fp32 pointers.
struct Gemv {
  torch::Tensor w;
  std::function<void(const float* x, const float* bias, float* y)> run;

  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& bias) const {
    torch::Tensor y = torch::full({w.size(0)}, std::nanf(""));
    run(x.data_ptr<float>(), ptr_or_null(bias), y.data_ptr<float>());
    return y;
  }
};

// Codes [rows, cols] (values 0..15) -> bytes [rows * cols / 2], column 2j in the high nibble of byte j.
torch::Tensor pack_nibbles(const torch::Tensor& codes) {
  torch::Tensor pairs = codes.to(torch::kInt32).reshape({-1, 2});
  return (pairs.select(1, 0) * 16 + pairs.select(1, 1)).to(torch::kUInt8).contiguous();
}

Gemv make_int8(int64_t rows, int64_t cols) {
  torch::Tensor q = torch::randint(-127, 128, {rows, cols}, torch::kInt8);
  torch::Tensor scale = (torch::rand({rows}) + 0.05) / 127;
  torch::Tensor w = q.to(torch::kFloat64) * scale.to(torch::kFloat64).unsqueeze(1);
  return {w, [=](const float* x, const float* bias, float* y) {
            int8_gemv(q.data_ptr<int8_t>(), scale.data_ptr<float>(), rows, cols, x, bias, y);
          }};
}

Gemv make_int4(int64_t rows, int64_t cols, int64_t group) {
  torch::Tensor codes = torch::randint(0, 16, {rows, cols}, torch::kUInt8);
  torch::Tensor packed = pack_nibbles(codes);
  torch::Tensor scale = torch::rand({rows, cols / group}) * 0.2 + 0.01;
  torch::Tensor minimum = -torch::rand({rows, cols / group}) * 1.5;
  auto per_column = [&](const torch::Tensor& t) { return t.to(torch::kFloat64).repeat_interleave(group, 1); };
  torch::Tensor w = codes.to(torch::kFloat64) * per_column(scale) + per_column(minimum);
  return {w, [=](const float* x, const float* bias, float* y) {
            int4_gemv(packed.data_ptr<uint8_t>(), scale.data_ptr<float>(), minimum.data_ptr<float>(), rows, cols, group,
                      x, bias, y);
          }};
}

Gemv make_nf4(int64_t rows, int64_t cols, int64_t block) {
  torch::Tensor codes = torch::randint(0, 16, {rows, cols}, torch::kInt64);
  torch::Tensor packed = pack_nibbles(codes);
  torch::Tensor absmax = torch::rand({rows * cols / block}) + 0.1;
  torch::Tensor book = torch::tensor(kNf4);
  torch::Tensor w =
      book.to(torch::kFloat64).index({codes}).reshape({-1, block}) * absmax.to(torch::kFloat64).unsqueeze(1);
  w = w.reshape({rows, cols});
  return {w, [=](const float* x, const float* bias, float* y) {
            nf4_gemv(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(), book.data_ptr<float>(), rows, cols, block, x,
                     bias, y);
          }};
}

// |a - b| <= rel * (sum_c |W[r, c] x[c]| + |bias[r]|) + 1e-7 per row: relative to the size of the terms summed, not
// of their (possibly cancelling) total.
void expect_close(const torch::Tensor& a, const torch::Tensor& b, const Gemv& k, const torch::Tensor& x,
                  const torch::Tensor& bias, double rel, const std::string& what) {
  torch::Tensor mass = k.w.abs().matmul(x.to(torch::kFloat64).abs());
  if (bias.defined()) mass = mass + bias.to(torch::kFloat64).abs();
  torch::Tensor excess = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs() - (rel * mass + 1e-7);
  EXPECT_LE(excess.max().item<double>(), 0.0) << what << " rows " << k.w.size(0) << " cols " << k.w.size(1);
}

// The checks every GEMV gets: against torch on W (fp64), threads 1 vs 2 bit for bit, scalar vs vector path.
void check_gemv(const Gemv& k, bool with_bias) {
  KernelStateGuard guard;
  const int64_t rows = k.w.size(0), cols = k.w.size(1);
  torch::Tensor x = torch::randn({cols});
  torch::Tensor bias = with_bias ? torch::randn({rows}) : torch::Tensor();
  torch::Tensor ref = k.w.matmul(x.to(torch::kFloat64));
  if (with_bias) ref = ref + bias.to(torch::kFloat64);

  at::set_num_threads(1);
  torch::Tensor one = k(x, bias);
  at::set_num_threads(2);
  torch::Tensor two = k(x, bias);
  EXPECT_TRUE(torch::equal(one, two)) << "1 vs 2 threads, rows " << rows << " cols " << cols;
  expect_close(two, ref, k, x, bias, 1e-5, "vs torch");

  set_max_path(KernelPath::kScalar);
  torch::Tensor scalar = k(x, bias);
  expect_close(scalar, two, k, x, bias, 1e-5, "scalar vs " + kernel_path());
  expect_close(scalar, ref, k, x, bias, 1e-5, "scalar vs torch");
}

TEST(QuantKernelsPath, ReportsTheCpuAndHonoursTheCap) {
  KernelStateGuard guard;
  EXPECT_EQ(kernel_path(), cpu_has_vnni() ? "avx512-vnni" : cpu_has_avx512() ? "avx512" : "scalar");
  set_max_path(KernelPath::kScalar);
  EXPECT_EQ(kernel_path(), "scalar");
  set_max_path(KernelPath::kAvx512);
  EXPECT_EQ(kernel_path(), cpu_has_avx512() ? "avx512" : "scalar");
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 here: only the scalar path ran";
}

TEST(QuantKernelsHand, Int8TwoByThree) {
  // W = [[1, -2, 3] * 0.5, [127, 0, -127] * 0.25], x = [1, 2, 3]: 0.5 * 6 + 1 = 4, 0.25 * (127 - 381) - 1 = -64.5
  const int8_t q[] = {1, -2, 3, 127, 0, -127};
  const float scale[] = {0.5f, 0.25f}, x[] = {1, 2, 3}, bias[] = {1, -1};
  float y[2];
  int8_gemv(q, scale, 2, 3, x, bias, y);
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[1], -64.5f);
}

TEST(QuantKernelsHand, Int4TwoByFourGroupsOfTwo) {
  // Codes [[1, 2, 3, 4], [15, 0, 7, 8]] -> bytes 0x12 0x34 | 0xF0 0x78. Per group (scale, min):
  // row 0 (0.5, -1), (2, 0):      W = [-0.5, 0, 6, 8]         . x = [1, 2, 3, 4] -> 49.5  (+ 0.25)
  // row 1 (1, 0.5), (0.25, -2):   W = [15.5, 0.5, -0.25, 0]   . x               -> 15.75 (- 1)
  const uint8_t packed[] = {0x12, 0x34, 0xF0, 0x78};
  const float scale[] = {0.5f, 2.0f, 1.0f, 0.25f}, minimum[] = {-1.0f, 0.0f, 0.5f, -2.0f};
  const float x[] = {1, 2, 3, 4}, bias[] = {0.25f, -1.0f};
  float y[2];
  int4_gemv(packed, scale, minimum, 2, 4, 2, x, nullptr, y);
  EXPECT_EQ(y[0], 49.5f);
  EXPECT_EQ(y[1], 15.75f);
  int4_gemv(packed, scale, minimum, 2, 4, 2, x, bias, y);
  EXPECT_EQ(y[0], 49.75f);
  EXPECT_EQ(y[1], 14.75f);
}

TEST(QuantKernelsHand, Int4NibbleOrderOnTheVectorPath) {
  // One row of 32 (a group the vector path takes): codes 1, 2, 3, 4 then 0; scale 0.5, min 0; x = 1, 2, 3, 4, then
  // 100. y = 0.5 (1 + 4 + 9 + 16) = 15; swapped nibbles would give 0.5 (2 + 2 + 12 + 12) = 14.
  KernelStateGuard guard;
  std::vector<uint8_t> packed(16, 0);
  packed[0] = 0x12;
  packed[1] = 0x34;
  std::vector<float> x(32, 100.0f);
  for (int c = 0; c < 4; ++c) x[c] = c + 1.0f;
  const float scale = 0.5f, minimum = 0.0f;
  for (KernelPath path : {KernelPath::kAvx512Vnni, KernelPath::kScalar}) {
    set_max_path(path);
    float y = 0;
    int4_gemv(packed.data(), &scale, &minimum, 1, 32, 32, x.data(), nullptr, &y);
    EXPECT_EQ(y, 15.0f) << kernel_path();
  }
}

TEST(QuantKernelsHand, Nf4OneBlock) {
  // Block of 64, absmax 2: byte 0 = 0x0F (codes 0 = -1 and 15 = +1), the rest 0x77 (code 7 = 0).
  // x = 3, 5, then 1: y = -1 * 2 * 3 + 1 * 2 * 5 = 4.
  KernelStateGuard guard;
  std::vector<uint8_t> packed(32, 0x77);
  packed[0] = 0x0F;
  std::vector<float> x(64, 1.0f);
  x[0] = 3;
  x[1] = 5;
  const float absmax = 2.0f;
  for (KernelPath path : {KernelPath::kAvx512Vnni, KernelPath::kScalar}) {
    set_max_path(path);
    float y = 0;
    nf4_gemv(packed.data(), &absmax, kNf4.data(), 1, 64, 64, x.data(), nullptr, &y);
    EXPECT_EQ(y, 4.0f) << kernel_path();
  }
}

TEST(QuantKernelsInt8, MatchesTorchOnOddShapes) {
  torch::manual_seed(10);
  // cols: below one vector, the 16-wide step, the masked tail, both; rows: not multiples of the 4-row unroll.
  for (auto [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 17}, {7, 100}, {13, 120}, {5, 3072}, {770, 768}}) {
    const Gemv k = make_int8(rows, cols);
    check_gemv(k, false);
    check_gemv(k, true);
  }
}

TEST(QuantKernelsInt4, MatchesTorchOnOddShapes) {
  torch::manual_seed(11);
  // (rows, cols, group): cols a multiple of the group only; group 16 and 2 take the scalar path everywhere.
  for (auto [rows, cols, group] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 32, 32}, {7, 96, 32}, {13, 160, 32}, {9, 384, 128}, {770, 768, 64}, {6, 48, 16}, {3, 4, 2}}) {
    const Gemv k = make_int4(rows, cols, group);
    check_gemv(k, false);
    check_gemv(k, true);
  }
}

TEST(QuantKernelsNf4, MatchesTorchOnOddShapes) {
  torch::manual_seed(12);
  for (auto [rows, cols, block] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 64, 64}, {7, 192, 64}, {5, 96, 32}, {770, 768, 64}, {3, 3072, 64}, {2, 40, 20}}) {
    const Gemv k = make_nf4(rows, cols, block);
    check_gemv(k, false);
    check_gemv(k, true);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dynamic int8.

struct DynamicWeight {
  torch::Tensor q, scale, row_sums;  // int8 [rows, cols], fp32 [rows], int32 [rows]
};

DynamicWeight make_dynamic(int64_t rows, int64_t cols) {
  DynamicWeight w;
  w.q = torch::randint(-127, 128, {rows, cols}, torch::kInt8);
  w.scale = (torch::rand({rows}) + 0.05) / 127;
  w.row_sums = w.q.to(torch::kInt32).sum(1).to(torch::kInt32);
  return w;
}

torch::Tensor ours_dynamic(const DynamicWeight& w, const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t rows = w.q.size(0), cols = w.q.size(1), m = x.size(0);
  torch::Tensor y = torch::full({m, rows}, std::nanf(""));
  int8_dynamic_gemm(w.q.data_ptr<int8_t>(), w.scale.data_ptr<float>(), w.row_sums.data_ptr<int32_t>(), rows, cols,
                    x.data_ptr<float>(), m, ptr_or_null(bias), y.data_ptr<float>());
  return y;
}

// The header's formula in torch ops: xq = round(x / sx) (ties to even), exact integer dots (fp64 holds them).
torch::Tensor reference_dynamic(const DynamicWeight& w, const torch::Tensor& x, const torch::Tensor& bias) {
  torch::Tensor sx = x.abs().amax(1, true) / 127.0f;
  torch::Tensor xq = torch::where(sx > 0, torch::round(x / sx), torch::zeros_like(x)).clamp(-127, 127);
  torch::Tensor dots = xq.to(torch::kFloat64).matmul(w.q.to(torch::kFloat64).t()).to(torch::kFloat32);
  torch::Tensor y = dots * (sx * w.scale.unsqueeze(0));
  return bias.defined() ? y + bias : y;
}

// torch's own: quantized::linear_prepack on the same int8 codes and per-channel scales, then
// quantized::linear_dynamic (what torch.ao.nn.quantized.dynamic.Linear runs, there with reduce_range=True).
torch::Tensor torch_dynamic(const DynamicWeight& w, const torch::Tensor& x, const torch::Tensor& bias,
                            bool reduce_range) {
  const int64_t rows = w.q.size(0);
  torch::Tensor wq =
      at::_make_per_channel_quantized_tensor(w.q, w.scale.to(torch::kFloat64), torch::zeros({rows}, torch::kInt64), 0);
  static const c10::OperatorHandle prepack =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  static const c10::OperatorHandle linear =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
  torch::jit::Stack stack{wq, bias.defined() ? c10::IValue(bias) : c10::IValue()};
  prepack.callBoxed(&stack);
  c10::IValue packed = stack.at(0);
  stack = {x, packed, reduce_range};
  linear.callBoxed(&stack);
  return stack.at(0).toTensor();
}

TEST(QuantKernelsDynamic, AllPathsEqualTheIntegerReferenceBitForBit) {
  KernelStateGuard guard;
  torch::manual_seed(20);
  for (auto [rows, cols, m] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {5, 63, 3}, {7, 100, 2}, {13, 200, 1}, {770, 768, 4}, {6, 3072, 5}}) {
    const DynamicWeight w = make_dynamic(rows, cols);
    torch::Tensor x = torch::randn({m, cols});
    x[0].zero_();  // an all-zero row gives 0 (+ bias)
    for (const torch::Tensor& bias : {torch::randn({rows}), torch::Tensor()}) {
      set_max_path(KernelPath::kScalar);
      at::set_num_threads(1);
      const torch::Tensor scalar = ours_dynamic(w, x, bias);
      EXPECT_TRUE(torch::equal(scalar[0], bias.defined() ? bias : torch::zeros({rows})));
      torch::Tensor ref = reference_dynamic(w, x, bias);
      EXPECT_LE((scalar - ref).abs().max().item<double>(), 1e-6 * (1 + ref.abs().max().item<double>()));
      for (KernelPath path : {KernelPath::kAvx512, KernelPath::kAvx512Vnni}) {
        set_max_path(path);
        for (int threads : {1, 2}) {
          at::set_num_threads(threads);
          EXPECT_TRUE(torch::equal(ours_dynamic(w, x, bias), scalar))
              << kernel_path() << " threads " << threads << " rows " << rows << " cols " << cols;
        }
      }
    }
  }
}

// Acceptance: "int8 dynamic quantization of a Linear agrees with torch's own within one quantization step". Per
// output, rounding x to steps of s moves y by at most sum_c |W[r, c]| s / 2, so ours (per-row steps sx) and torch's
// (one step st for the whole input, asymmetric uint8) differ by at most sum_c |W[r, c]| (sx + st) / 2, and each lies
// within its own half step of the fp32 product.
TEST(QuantKernelsDynamic, AgreesWithTorchDynamicLinearWithinOneStep) {
  torch::manual_seed(21);
  for (bool reduce_range : {true, false}) {
    for (auto [rows, cols, m] :
         std::vector<std::tuple<int64_t, int64_t, int64_t>>{{7, 100, 1}, {768, 768, 1}, {96, 3072, 4}}) {
      const DynamicWeight w = make_dynamic(rows, cols);
      torch::Tensor x = torch::randn({m, cols}) + 0.3;
      torch::Tensor bias = torch::randn({rows});
      torch::Tensor ours = ours_dynamic(w, x, bias);
      torch::Tensor theirs = torch_dynamic(w, x, bias, reduce_range);
      torch::Tensor w_deq = w.q.to(torch::kFloat32) * w.scale.unsqueeze(1);
      torch::Tensor exact = torch::addmm(bias, x, w_deq.t());
      torch::Tensor sx = x.abs().amax(1, true) / 127;  // [m, 1]
      const double st = ((x.max().clamp_min(0) - x.min().clamp_max(0)) / (reduce_range ? 127 : 255)).item<double>();
      torch::Tensor w_mass = w_deq.abs().sum(1).unsqueeze(0);                              // [1, rows]
      torch::Tensor slack = 1e-5 * (x.abs().matmul(w_deq.abs().t()) + bias.abs()) + 1e-5;  // fp32 rounding
      EXPECT_TRUE(((ours - theirs).abs() <= w_mass * (sx + st) / 2 + slack).all().item<bool>())
          << "rows " << rows << " cols " << cols << " reduce_range " << reduce_range;
      EXPECT_TRUE(((ours - exact).abs() <= w_mass * sx / 2 + slack).all().item<bool>());
      EXPECT_TRUE(((theirs - exact).abs() <= w_mass * st / 2 + slack).all().item<bool>());
      // Rounding errors are unbiased, so the typical gap is far below the worst case: a tenth of it on average.
      EXPECT_LT(((ours - theirs).abs() / (w_mass * (sx + st) / 2)).mean().item<double>(), 0.1);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Benchmark (asserts nothing): GB/s of weight bytes per GEMV, median of 20, at 1 and 2 threads, next to torch::mv
// on fp32 and bf16 weights. "warm" repeats the same matrix (it stays in L2/L3 when small enough); "cold" reads a
// 64 MiB buffer between runs, as decoding a whole model does (every layer's weights come from DRAM).

struct Timer {
  std::vector<char> flush_buffer = std::vector<char>(64 << 20, 1);
  volatile char sink = 0;

  double median_seconds(const std::function<void()>& f, bool cold) {
    std::vector<double> t;
    f();
    for (int i = 0; i < 20; ++i) {
      if (cold) {
        for (size_t j = 0; j < flush_buffer.size(); j += 64) flush_buffer[j]++;
        sink = flush_buffer[i];
      }
      const auto t0 = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return bench::median(t);
  }
};

TEST(QuantKernelsBench, DISABLED_GemvBandwidth) {
  KernelStateGuard guard;
  Timer timer;
  std::printf("kernel path: %s\n", kernel_path().c_str());
  std::printf("%-12s %-7s %3s %9s %9s %9s\n", "shape", "format", "thr", "MB", "warm GB/s", "cold GB/s");
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{768, 3072}, {3072, 768}, {50257, 768}}) {
    torch::manual_seed(30);
    torch::Tensor w = torch::randn({rows, cols});
    torch::Tensor wb = w.to(torch::kBFloat16);
    torch::Tensor x = torch::randn({cols}), xb = x.to(torch::kBFloat16), y = torch::empty({rows});
    torch::Tensor q = torch::randint(-127, 128, {rows, cols}, torch::kInt8), s8 = torch::rand({rows});
    torch::Tensor row_sums = q.to(torch::kInt32).sum(1).to(torch::kInt32);
    torch::Tensor packed = torch::randint(0, 256, {rows * cols / 2}, torch::kUInt8);
    const int64_t group = 128, block = 64;
    torch::Tensor s4 = torch::rand({rows, cols / group}), m4 = torch::rand({rows, cols / group});
    torch::Tensor absmax = torch::rand({rows * cols / block}), book = torch::tensor(kNf4);
    struct Row {
      const char* name;
      double bytes;
      std::function<void()> f;
    };
    const std::vector<Row> formats = {
        {"fp32", 4.0 * rows * cols, [&] { torch::mv(w, x); }},
        {"bf16", 2.0 * rows * cols, [&] { torch::mv(wb, xb); }},
        {"int8", rows * (cols + 4.0),
         [&] {
           int8_gemv(q.data_ptr<int8_t>(), s8.data_ptr<float>(), rows, cols, x.data_ptr<float>(), nullptr,
                     y.data_ptr<float>());
         }},
        {"int8dyn", rows * (cols + 4.0),
         [&] {
           int8_dynamic_gemm(q.data_ptr<int8_t>(), s8.data_ptr<float>(), row_sums.data_ptr<int32_t>(), rows, cols,
                             x.data_ptr<float>(), 1, nullptr, y.data_ptr<float>());
         }},
        {"int4", rows * (cols / 2.0 + 8.0 * cols / group),
         [&] {
           int4_gemv(packed.data_ptr<uint8_t>(), s4.data_ptr<float>(), m4.data_ptr<float>(), rows, cols, group,
                     x.data_ptr<float>(), nullptr, y.data_ptr<float>());
         }},
        {"nf4", rows * (cols / 2.0 + 4.0 * cols / block),
         [&] {
           nf4_gemv(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(), book.data_ptr<float>(), rows, cols, block,
                    x.data_ptr<float>(), nullptr, y.data_ptr<float>());
         }},
    };
    for (int threads : {1, 2}) {
      at::set_num_threads(threads);
      for (const Row& row : formats) {
        const double warm = timer.median_seconds(row.f, false), cold = timer.median_seconds(row.f, true);
        std::printf("%5ldx%-6ld %-7s %3d %9.2f %9.2f %9.2f\n", static_cast<long>(rows), static_cast<long>(cols),
                    row.name, threads, row.bytes / 1e6, row.bytes / warm / 1e9, row.bytes / cold / 1e9);
      }
    }
  }
}

// GPT-2 small's decode step: 12 blocks of c_attn (2304 x 768), attn c_proj (768 x 768), mlp c_fc (3072 x 768) and
// c_proj (768 x 3072), then the 50257 x 768 LM head, every matrix its own copy (so each is read from DRAM, as in a
// real decode). Prints ms per token and the speedup over bf16 weights through torch::mv.
TEST(QuantKernelsBench, DISABLED_Gpt2SmallDecodeStep) {
  KernelStateGuard guard;
  Timer timer;
  torch::manual_seed(31);
  struct Layer {
    int64_t rows, cols;
    torch::Tensor wb, q, s8, packed, s4, m4, absmax;
  };
  std::vector<Layer> layers;
  auto add = [&](int64_t rows, int64_t cols) {
    Layer l;
    l.rows = rows;
    l.cols = cols;
    l.wb = torch::randn({rows, cols}).to(torch::kBFloat16);
    l.q = torch::randint(-127, 128, {rows, cols}, torch::kInt8);
    l.s8 = torch::rand({rows});
    l.packed = torch::randint(0, 256, {rows * cols / 2}, torch::kUInt8);
    l.s4 = torch::rand({rows, cols / 128});
    l.m4 = torch::rand({rows, cols / 128});
    l.absmax = torch::rand({rows * cols / 64});
    layers.push_back(std::move(l));
  };
  for (int b = 0; b < 12; ++b) {
    add(2304, 768);
    add(768, 768);
    add(3072, 768);
    add(768, 3072);
  }
  add(50257, 768);
  torch::Tensor x = torch::randn({3072}), xb = x.to(torch::kBFloat16), y = torch::empty({50257});
  torch::Tensor book = torch::tensor(kNf4);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const std::vector<std::pair<const char*, std::function<void()>>> formats = {
      {"bf16",
       [&] {
         for (const Layer& l : layers) torch::mv(l.wb, xb.slice(0, 0, l.cols));
       }},
      {"int8",
       [&] {
         for (const Layer& l : layers)
           int8_gemv(l.q.data_ptr<int8_t>(), l.s8.data_ptr<float>(), l.rows, l.cols, xp, nullptr, yp);
       }},
      {"int4",
       [&] {
         for (const Layer& l : layers)
           int4_gemv(l.packed.data_ptr<uint8_t>(), l.s4.data_ptr<float>(), l.m4.data_ptr<float>(), l.rows, l.cols, 128,
                     xp, nullptr, yp);
       }},
      {"nf4",
       [&] {
         for (const Layer& l : layers)
           nf4_gemv(l.packed.data_ptr<uint8_t>(), l.absmax.data_ptr<float>(), book.data_ptr<float>(), l.rows, l.cols,
                    64, xp, nullptr, yp);
       }},
  };
  std::printf("%-6s %3s %10s %8s\n", "format", "thr", "ms/token", "vs bf16");
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    double bf16 = 0;
    for (const auto& [name, f] : formats) {
      const double t = timer.median_seconds(f, false);
      if (bf16 == 0) bf16 = t;
      std::printf("%-6s %3d %10.2f %8.2f\n", name, threads, t * 1e3, bf16 / t);
    }
  }
}

}  // namespace
}  // namespace troupe::models::quant_kernels
