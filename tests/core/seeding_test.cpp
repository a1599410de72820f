// Tests for core/seeding.h: pinned reference values, determinism, distinct seeds per role and
// rank, and torch seeding. Not a statistical test of SplitMix64's quality.
#include "core/seeding.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace troupe::core {
namespace {

TEST(Seed, SplitMix64MatchesReferenceByHand) {
  // splitmix64(0), step by step (all mod 2^64):
  //   x = 0 + 0x9e3779b97f4a7c15                  = 0x9e3779b97f4a7c15
  //   x ^ (x >> 30)                                = 0x9e3779bb07979af0
  //   * 0xbf58476d1ce4e5b9                         = 0x6f68261b57e7a770
  //   ^ (>> 27)                                    = 0x6f682616bae3641a
  //   * 0x94d049bb133111eb                         = 0xe220a838bf5c9dde
  //   ^ (>> 31)                                    = 0xe220a8397b1dcdaf
  // which is also the first output of the reference splitmix64.c seeded with 0.
  static_assert(splitmix64(0) == 0xe220a8397b1dcdafULL);
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafULL);
}

TEST(Seed, Fnv1aMatchesPublishedVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);  // the offset basis
  // "a": (0xcbf29ce484222325 ^ 0x61) * 0x100000001b3 mod 2^64, the FNV test-suite value.
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(Seed, DeriveSeedIsPinned) {
  // derive_seed(42, "actor", 0):
  //   splitmix64(42)                       = 0xbdd732262feb6e95
  //   fnv1a64("actor")                     = 0xdcccc5391c47d4da
  //   splitmix64(0xbdd7...6e95 ^ 0xdccc...d4da = 0x611bf71f33acba4f) = 0xcedc966dfcbf8193
  //   splitmix64(0xcedc966dfcbf8193 ^ 0)   = 0x1b1127e4a2964bcb
  // (intermediates checked with an independent Python implementation). If this fails, every
  // run's randomness changed: that is a format change, not a refactor.
  EXPECT_EQ(splitmix64(42), 0xbdd732262feb6e95ULL);
  EXPECT_EQ(fnv1a64("actor"), 0xdcccc5391c47d4daULL);
  EXPECT_EQ(splitmix64(0xbdd732262feb6e95ULL ^ 0xdcccc5391c47d4daULL), 0xcedc966dfcbf8193ULL);
  EXPECT_EQ(derive_seed(42, "actor", 0), 0x1b1127e4a2964bcbULL);
  EXPECT_EQ(derive_seed(42, "actor", 1), 0x11826819ced7e72eULL);
}

TEST(Seed, DeriveSeedIsDeterministic) {
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(derive_seed(1234, "critic", rank), derive_seed(1234, std::string("critic"), rank));
  }
}

TEST(Seed, RolesRanksAndBasesGiveDistinctSeeds) {
  std::set<uint64_t> seeds;
  int count = 0;
  for (uint64_t base : {0ULL, 1ULL, 2ULL}) {
    for (const char* role : {"actor", "critic", "reward", "reference", "controller", ""}) {
      for (int rank = 0; rank < 16; ++rank) {
        seeds.insert(derive_seed(base, role, rank));
        ++count;
      }
    }
  }
  EXPECT_EQ(seeds.size(), static_cast<size_t>(count));
  EXPECT_NE(derive_seed(7, "actor", -1), derive_seed(7, "actor", 0));
}

TEST(Seed, SeedSequenceStartsAtDeriveSeedAndNeverRepeatsEarly) {
  SeedSequence seq(42, "actor", 0);
  SeedSequence same(42, "actor", 0);
  EXPECT_EQ(seq.next(), derive_seed(42, "actor", 0));
  EXPECT_EQ(seq.next(), splitmix64(derive_seed(42, "actor", 0)));
  same.next();
  same.next();
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = seq.next();
    EXPECT_EQ(v, same.next());
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 1000u);
  std::mt19937_64 engine = SeedSequence(42, "actor", 0).make_engine();
  EXPECT_EQ(engine(), std::mt19937_64(derive_seed(42, "actor", 0))());
}

TEST(Seed, SeedTorchMakesDrawsReproducible) {
  seed_torch(derive_seed(5, "reward", 0));
  const torch::Tensor a = torch::randn({6});
  seed_torch(derive_seed(5, "reward", 0));
  EXPECT_TRUE(torch::equal(torch::randn({6}), a));
  seed_torch(derive_seed(5, "reward", 1));
  EXPECT_FALSE(torch::equal(torch::randn({6}), a));
}

}  // namespace
}  // namespace troupe::core
