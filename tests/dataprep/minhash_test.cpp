// dataprep/minhash.h and the LSH parameters of dataprep/dedup.h against datasketch 2.0
// (tests/dataprep/minhash_reference.py run in the test): permutations, hashvalues and jaccard() bit for bit for both
// schemes and several (num_perm, seed) on seeded word-shingle sets; _optimal_param over a threshold x num_perm grid;
// and the estimate's accuracy against the exact Jaccard on sets of known overlap.
#include "dataprep/minhash.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/errors.h"
#include "dataprep/dedup.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

// Seeded documents of 20..200 words from a vocabulary with non-ASCII words, as word 3-shingles; set 0 is empty.
std::vector<std::vector<std::string>> seeded_shingle_sets(int count) {
  const std::vector<std::string> vocab = {"the",
                                          "cat",
                                          "sat",
                                          "on",
                                          "mat",
                                          "caf\xc3\xa9",
                                          "na\xc3\xafve",
                                          "\xce\xbb",
                                          "data",
                                          "x1",
                                          "\xe6\x97\xa5\xe6\x9c\xac",
                                          "dog",
                                          "ran",
                                          "far",
                                          "away",
                                          "Stra\xc3\x9f"
                                          "e"};
  std::mt19937 rng(17);
  std::vector<std::vector<std::string>> sets(1);
  for (int d = 1; d < count; ++d) {
    std::string text;
    const int words = std::uniform_int_distribution<int>(20, 200)(rng);
    for (int w = 0; w < words; ++w) text += vocab[rng() % vocab.size()] + " ";
    sets.push_back(shingles(dedup_normal_text(text), ShingleKind::kWords, 3));
  }
  return sets;
}

TEST(MinHash, EqualsDatasketchBitForBit) {
  const auto sets = seeded_shingle_sets(60);
  nlohmann::json spec;
  spec["sets"] = sets;
  spec["configs"] = {{128, 1, "affine32"}, {64, 42, "affine32"}, {256, 7, "affine32"}, {100, 4294967295u, "affine32"},
                     {128, 1, "legacy"},   {64, 42, "legacy"},   {256, 0, "legacy"}};
  for (size_t i = 0; i + 1 < sets.size(); ++i) spec["pairs"].push_back({i, i + 1});
  spec["grid"] = {{"thresholds", {0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}},
                  {"num_perms", {64, 100, 128, 256}}};
  spec["integrals"] = {{0.5, 20, 5}, {0.8, 9, 13}, {0.9, 5, 25}, {0.3, 1, 1}, {0.95, 256, 1}, {0.7, 1, 256}};

  testing::ScratchDir dir("troupe-minhash");
  testing::write_file(dir / "in.json", spec.dump());
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/minhash_reference.py").string(),
                            (dir / "in.json").string(), (dir / "out.json").string()},
                           std::chrono::seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ref = nlohmann::json::parse(testing::read_file(dir / "out.json"));

  for (size_t c = 0; c < spec["configs"].size(); ++c) {
    const auto& cfg = spec["configs"][c];
    const MinHasher hasher(cfg[0].get<int>(), cfg[1].get<uint32_t>(), parse_minhash_scheme(cfg[2]));
    const auto& want = ref["configs"][c];
    SCOPED_TRACE(cfg.dump());
    EXPECT_EQ(hasher.a(), want["a"].get<std::vector<uint64_t>>());
    EXPECT_EQ(hasher.b(), want["b"].get<std::vector<uint64_t>>());
    std::vector<std::vector<uint32_t>> sigs;
    for (size_t s = 0; s < sets.size(); ++s) {
      sigs.push_back(hasher.signature(sets[s]));
      EXPECT_EQ(sigs.back(), want["hashvalues"][s].get<std::vector<uint32_t>>()) << "set " << s;
    }
    EXPECT_EQ(sigs[0], hasher.empty_signature());
    for (size_t p = 0; p < spec["pairs"].size(); ++p) {
      const size_t i = spec["pairs"][p][0], j = spec["pairs"][p][1];
      EXPECT_EQ(estimated_jaccard(sigs[i], sigs[j]), want["jaccard"][p].get<double>()) << "pair " << p;
    }
  }

  for (const auto& row : ref["optimal"]) {
    const LshParams got = optimal_lsh_params(row[0].get<double>(), row[1].get<int>());
    EXPECT_EQ((std::pair{got.bands, got.rows}), (std::pair{row[2].get<int>(), row[3].get<int>()}))
        << "threshold " << row[0] << " num_perm " << row[1];
  }
  EXPECT_EQ(ref["optimal"].size(), 40u);
  for (size_t i = 0; i < spec["integrals"].size(); ++i) {
    const auto& q = spec["integrals"][i];
    EXPECT_NEAR(lsh_false_positive_probability(q[0], q[1], q[2]), ref["fp"][i].get<double>(), 1e-10) << q.dump();
    EXPECT_NEAR(lsh_false_negative_probability(q[0], q[1], q[2]), ref["fn"][i].get<double>(), 1e-10) << q.dump();
  }
}

// The probability that Binomial(n, p) falls at or beyond k on k's side of the mean n p.
double binomial_tail(int n, double p, int k) {
  if (p <= 0) return k == 0 ? 1.0 : 0.0;
  if (p >= 1) return k == n ? 1.0 : 0.0;
  double tail = 0;
  const bool upper = k >= n * p;
  for (int i = upper ? k : 0; i <= (upper ? n : k); ++i) {
    tail += std::exp(std::lgamma(n + 1) - std::lgamma(i + 1) - std::lgamma(n - i + 1) + i * std::log(p) +
                     (n - i) * std::log1p(-p));
  }
  return tail;
}

// 300 pairs of sets of 50..300 distinct shingles with every overlap from none to all, per scheme. The number of equal
// entries is Binomial(num_perm, J) for min-wise independent permutations, so: each estimate's tail probability under
// that binomial above 1e-6 (a 4.9-sigma two-sided bound; no pair of 600 should fail by chance), the mean error
// (bias) within 4 standard errors of the mean, and the mean squared z-score (dispersion) within 4 standard errors
// (sqrt(2 / pairs)) of 1: a scheme whose permutations were correlated would be over-dispersed.
TEST(MinHash, EstimateWithinStatisticalToleranceOfExactJaccard) {
  for (const auto scheme : {MinHashScheme::kAffine32, MinHashScheme::kLegacy}) {
    SCOPED_TRACE(static_cast<int>(scheme));
    const int num_perm = 128, pairs = 300;
    const MinHasher hasher(num_perm, 3, scheme);
    std::mt19937 rng(5);
    double bias = 0, var = 0, z2 = 0;
    int interior = 0;
    for (int p = 0; p < pairs; ++p) {
      const int na = std::uniform_int_distribution<int>(50, 300)(rng);
      const int nb = std::uniform_int_distribution<int>(50, 300)(rng);
      const int overlap = std::uniform_int_distribution<int>(0, std::min(na, nb))(rng);
      std::vector<std::string> a, b;
      const std::string tag = "p" + std::to_string(p) + " w";
      for (int i = 0; i < na; ++i) a.push_back(tag + std::to_string(i));
      for (int i = na - overlap; i < na - overlap + nb; ++i) b.push_back(tag + std::to_string(i));
      const double exact = static_cast<double>(overlap) / (na + nb - overlap);
      const double est = estimated_jaccard(hasher.signature(a), hasher.signature(b));
      const int equal = static_cast<int>(std::lround(est * num_perm));
      EXPECT_GT(binomial_tail(num_perm, exact, equal), 1e-6) << "J " << exact << " estimate " << est;
      bias += est - exact;
      var += exact * (1 - exact) / num_perm;
      if (exact > 0 && exact < 1) {
        z2 += (est - exact) * (est - exact) / (exact * (1 - exact) / num_perm);
        ++interior;
      }
    }
    EXPECT_LT(std::abs(bias / pairs), 4 * std::sqrt(var) / pairs);
    EXPECT_NEAR(z2 / interior, 1.0, 4 * std::sqrt(2.0 / interior));
    std::cout << "scheme " << static_cast<int>(scheme) << ": mean error " << bias / pairs << ", mean z^2 "
              << z2 / interior << " over " << interior << " pairs\n";
  }
}

TEST(MinHash, HandComputedPiecesAndErrors) {
  // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d: first 4 bytes little-endian.
  EXPECT_EQ(sha1_hash32("abc"), 0x363e99a9u);
  EXPECT_EQ(sha1_hash128("abc"), (std::pair<uint64_t, uint64_t>{0x6a810647363e99a9ull, 0x6cc2507871253ebaull}));
  // numpy: RandomState(7).randint(0, 2**32, 2, dtype=np.uint32) -> 0x1388f0af, 0x3a32e4c4; the uint64 draw takes
  // the first as its high word.
  detail::LegacyRandomState gen(7);
  EXPECT_EQ(gen.next_uint64(), 0x1388f0af3a32e4c4ull);
  EXPECT_EQ(estimated_jaccard(std::vector<uint32_t>{1, 2, 3, 4}, std::vector<uint32_t>{1, 0, 3, 0}), 0.5);
  EXPECT_THROW(estimated_jaccard(std::vector<uint32_t>{1}, std::vector<uint32_t>{1, 2}), DataError);
  EXPECT_THROW(MinHasher(0), ConfigError);
  EXPECT_THROW(parse_minhash_scheme("affine64"), ConfigError);
  const MinHasher h(16);
  const std::vector<std::string> dup = {"x", "y", "x"}, set = {"y", "x"};
  EXPECT_EQ(h.signature(dup), h.signature(set));  // a set: order and repeats do not matter
}

}  // namespace
}  // namespace troupe::dataprep
