// Deterministic seed derivation: one base seed per run fans out to a distinct, stable seed per
// (role, rank), plus torch seeding. Not an RNG library and no global state: callers own engines.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

namespace troupe::core {

// One step of SplitMix64 (Steele, Lea & Flood 2014), the mixer used to seed xoshiro:
//   x += 0x9e3779b97f4a7c15
//   z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
//   z = (z ^ (z >> 27)) * 0x94d049bb133111eb
//   return z ^ (z >> 31)
// Example: splitmix64(0) == 0xe220a8397b1dcdaf. All arithmetic is mod 2^64, so the result is
// the same on every platform and compiler.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// 64-bit FNV-1a over the bytes of `text` (offset basis 0xcbf29ce484222325, prime
// 0x100000001b3). Stable across runs, unlike std::hash. Example: fnv1a64("a") == 0xaf63dc4c8601ec8c.
constexpr uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The seed for one process of one role:
//   splitmix64(splitmix64(splitmix64(base_seed) ^ fnv1a64(role)) ^ uint64_t(int64_t(rank)))
// Each input passes through a full SplitMix64 round before the next is mixed in, so nearby
// bases, similar role names and consecutive ranks give unrelated seeds.
// Example: derive_seed(42, "actor", 0) == 0x1b1127e4a2964bcb. Changing this changes every run's
// randomness: the value is pinned by tests/core/seeding_test.cpp.
constexpr uint64_t derive_seed(uint64_t base_seed, std::string_view role, int rank) {
  const uint64_t with_role = splitmix64(splitmix64(base_seed) ^ fnv1a64(role));
  return splitmix64(with_role ^ static_cast<uint64_t>(static_cast<int64_t>(rank)));
}

// Seeds torch's default CPU generator (and CUDA generators when present): torch::manual_seed.
void seed_torch(uint64_t seed);

// A reproducible stream of seeds for one (role, rank): the first value is
// derive_seed(base, role, rank), each next one a SplitMix64 step on from it. Use one per process
// to seed its engines (data shuffling, sampling, torch) without reusing a seed twice.
class SeedSequence {
 public:
  SeedSequence(uint64_t base_seed, std::string_view role, int rank) : state_(derive_seed(base_seed, role, rank)) {}

  // The next seed in the stream (the first call returns derive_seed(base, role, rank)).
  uint64_t next() {
    const uint64_t out = state_;
    state_ = splitmix64(state_);
    return out;
  }

  // A std::mt19937_64 seeded with next().
  std::mt19937_64 make_engine() { return std::mt19937_64(next()); }

 private:
  uint64_t state_;
};

}  // namespace troupe::core
