// Synthetic token files for the training tests (header-only: only tests that link troupe::data include it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <vector>

#include "tokenizers/token_file.h"

namespace troupe::testing {

// A learnable stream of `n` ids over a vocabulary of 97: the next id is usually (5 id + 3) mod 97, one time in ten a
// random id drawn from `seed`. A small GPT learns it within tens of steps.
inline void write_learnable_tokens(const std::filesystem::path& path, int64_t n, uint64_t seed) {
  tokenizers::TokenFileWriter writer(path, 97, "synthetic");
  std::mt19937_64 rng(seed);
  std::vector<int> ids;
  int id = 1;
  for (int64_t i = 0; i < n; ++i) {
    ids.push_back(id);
    id = rng() % 10 == 0 ? static_cast<int>(rng() % 97) : (5 * id + 3) % 97;
  }
  writer.append(ids);
  writer.end_document();
  writer.finish();
}

}  // namespace troupe::testing
