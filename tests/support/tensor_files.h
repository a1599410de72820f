// The little binary files tests exchange with their Python reference scripts (tests/models/*_reference.py):
// ids as "B T\n" + int64 [B, T] little-endian, logits as float32 [B, T, V] without a header. Header-only, for the
// test files that already include torch.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace troupe::testing {

inline void write_ids(const std::filesystem::path& path, const torch::Tensor& ids) {
  std::ofstream out(path, std::ios::binary);
  out << ids.size(0) << " " << ids.size(1) << "\n";
  out.write(static_cast<const char*>(ids.contiguous().data_ptr()), ids.numel() * 8);
}

inline torch::Tensor read_ids(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  int64_t b = 0, t = 0;
  in >> b >> t;
  in.get();
  torch::Tensor ids = torch::empty({b, t}, torch::kLong);
  in.read(static_cast<char*>(ids.data_ptr()), ids.numel() * 8);
  EXPECT_EQ(in.gcount(), ids.numel() * 8) << path;
  return ids;
}

// float32 [ids.size(0), ids.size(1), vocab], checked to be complete.
inline torch::Tensor read_logits(const std::filesystem::path& path, const torch::Tensor& ids, int64_t vocab) {
  std::ifstream in(path, std::ios::binary);
  torch::Tensor logits = torch::empty({ids.size(0), ids.size(1), vocab}, torch::kFloat32);
  in.read(static_cast<char*>(logits.data_ptr()), logits.numel() * 4);
  EXPECT_EQ(in.gcount(), logits.numel() * 4) << path;
  return logits;
}

}  // namespace troupe::testing
