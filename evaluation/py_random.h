// Python's `random.Random` (CPython 3.11: MT19937 seeded by init_by_array from an integer seed, getrandbits,
// _randbelow, sample), bit for bit, so that few-shot examples are drawn exactly as lm-evaluation-harness draws them
// with its seeded `Random(fewshot_seed)`. Only what the harness needs.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace troupe::evaluation {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t next_uint32();          // genrand_uint32
  uint32_t getrandbits(int k);     // 0 <= k <= 32
  uint64_t randbelow(uint64_t n);  // 1 <= n < 2^32
  // random.sample(range(n), k): k distinct indices of [0, n), in Python's order. ConfigError unless 0 <= k <= n.
  std::vector<int64_t> sample(int64_t n, int64_t k);

 private:
  std::array<uint32_t, 624> mt_{};
  int index_ = 625;
};

}  // namespace troupe::evaluation
