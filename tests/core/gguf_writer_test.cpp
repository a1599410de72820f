// core/gguf_writer.h with hand-computed expectations: ggml's fp16 / bf16 rounding (ties to even, subnormals,
// overflow), a Q8_0 block worked out by hand, and the byte layout of a small file (header, a key/value, a tensor info,
// 32-byte aligned data). The models' files are checked against the gguf package in tests/models/gguf_test.cpp.
#include "core/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::core::gguf_writer_test {

TEST(GgufWriter, HalfPrecisionRoundsToNearestEvenAsGgml) {
  EXPECT_EQ(fp32_to_fp16(1.0F), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0F), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0F), 0x7bff);  // largest half
  EXPECT_EQ(fp32_to_fp16(65520.0F), 0x7c00);  // halfway to 65536: rounds to even = infinity
  EXPECT_EQ(fp32_to_fp16(65519.0F), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(1.0F + 1.0F / 2048), 0x3c00);     // exactly half an ulp above 1: ties to even (down)
  EXPECT_EQ(fp32_to_fp16(1.0F + 3.0F / 2048), 0x3c02);     // 1.5 ulps: ties to even (up)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0F, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0F, -25)), 0x0000);  // half of it: ties to even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0F, -26)), 0x0001);  // 0.75 of it: up
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0F, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7e00, 0x7e00);
  for (uint32_t h = 0; h < 0x7c00; h += 7) EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h);
  EXPECT_EQ(fp32_to_bf16(1.0F), 0x3f80);
  float x;
  uint32_t u = 0x3f808000;  // 1 + 2^-8: exactly half a bf16 ulp above 1 -> even (0x3f80)
  std::memcpy(&x, &u, 4);
  EXPECT_EQ(fp32_to_bf16(x), 0x3f80);
  u = 0x3f818000;  // odd bf16 mantissa + half -> up
  std::memcpy(&x, &u, 4);
  EXPECT_EQ(fp32_to_bf16(x), 0x3f82);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()) & 0x7fc0, 0x7fc0);
}

TEST(GgufWriter, Q8BlockIsScaleAndRoundedCodes) {
  std::vector<float> x(32, 0.0F);
  x[0] = -127.0F;  // amax 127: d = 1, codes are x rounded half away from zero (roundf)
  x[1] = 50.0F;
  x[2] = 1.5F;
  x[3] = -2.5F;
  x[4] = 0.49F;
  std::string out;
  quantize_q8_0(x.data(), 32, out);
  ASSERT_EQ(out.size(), 34u);
  uint16_t d;
  std::memcpy(&d, out.data(), 2);
  EXPECT_EQ(d, 0x3c00);  // 1.0 in fp16
  const auto q = [&](int i) { return static_cast<int>(static_cast<int8_t>(out[2 + i])); };
  EXPECT_EQ(q(0), -127);
  EXPECT_EQ(q(1), 50);
  EXPECT_EQ(q(2), 2);
  EXPECT_EQ(q(3), -3);
  EXPECT_EQ(q(4), 0);
  x[0] = 0.0F;  // amax 50 now: d = 50 / 127 rounded to fp16
  out.clear();
  quantize_q8_0(x.data(), 32, out);
  std::memcpy(&d, out.data(), 2);
  EXPECT_EQ(d, fp32_to_fp16(50.0F / 127.0F));
  EXPECT_EQ(static_cast<int8_t>(out[3]), 127);  // 50 * (127 / 50)
  std::string zeros;
  std::vector<float> z(32, 0.0F);
  quantize_q8_0(z.data(), 32, zeros);
  EXPECT_EQ(zeros, std::string(34, '\0'));
  EXPECT_THROW(quantize_q8_0(z.data(), 31, zeros), ConfigError);
}

TEST(GgufWriter, FileLayoutIsHeaderKeyValuesTensorInfosAndAlignedData) {
  testing::ScratchDir dir;
  GgufWriter w;
  w.add("general.architecture", std::string("gpt2"));
  EXPECT_THROW(w.add("general.architecture", std::string("llama")), ConfigError);
  const std::vector<float> data = {1, 2, 3, 4, 5, 6};
  w.add_tensor("t", {2, 3}, GgmlType::kF32, data.data());
  EXPECT_THROW(w.add_tensor("t", {6}, GgmlType::kF32, data.data()), ConfigError);
  EXPECT_THROW(w.add_tensor("q", {2, 3}, GgmlType::kQ8_0, data.data()), ConfigError);  // rows of 3
  w.write(dir / "a.gguf");
  const std::string f = testing::read_file(dir / "a.gguf");
  size_t at = 0;
  const auto take = [&](size_t n) {
    std::string s = f.substr(at, n);
    at += n;
    return s;
  };
  const auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, take(4).data(), 4);
    return v;
  };
  const auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, take(8).data(), 8);
    return v;
  };
  EXPECT_EQ(take(4), "GGUF");
  EXPECT_EQ(u32(), 3u);  // version
  EXPECT_EQ(u64(), 1u);  // tensors
  EXPECT_EQ(u64(), 2u);  // key/values: ours + general.alignment
  EXPECT_EQ(take(u64()), "general.architecture");
  EXPECT_EQ(u32(), 8u);  // string
  EXPECT_EQ(take(u64()), "gpt2");
  EXPECT_EQ(take(u64()), "general.alignment");
  EXPECT_EQ(u32(), 4u);  // uint32
  EXPECT_EQ(u32(), 32u);
  EXPECT_EQ(take(u64()), "t");
  EXPECT_EQ(u32(), 2u);  // dims
  EXPECT_EQ(u64(), 3u);  // ne[0]: the row length
  EXPECT_EQ(u64(), 2u);
  EXPECT_EQ(u32(), 0u);  // F32
  EXPECT_EQ(u64(), 0u);  // offset
  const size_t data_start = (at + 31) / 32 * 32;
  EXPECT_EQ(f.substr(at, data_start - at), std::string(data_start - at, '\0'));
  EXPECT_EQ(f.size(), data_start + 32);  // 24 bytes of data padded to 32
  EXPECT_EQ(std::memcmp(f.data() + data_start, data.data(), 24), 0);
}

}  // namespace troupe::core::gguf_writer_test
