// MinHash signatures equal bit for bit to datasketch 2.0's MinHash(num_perm, seed) with its default SHA-1 hash: the
// permutation parameters drawn as numpy's legacy np.random.RandomState(seed).randint draws them, both of datasketch's
// schemes ("affine32", its default since 2.0, and "legacy", the only one before). Not an LSH index (dataprep/dedup.h
// bands these signatures) and not datasketch's weighted, b-bit or lean variants.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::dataprep {

// datasketch's permutation schemes.
//   kAffine32 (datasketch >= 2.0 default): h = fmix32(sha1_hash32(x)); phv_k = a_k * h + b_k mod 2^32, a_k odd.
//   kLegacy (datasketch < 2.0): h = sha1_hash32(x); phv_k = ((a_k * h + b_k) mod 2^64 mod (2^61 - 1)) & (2^32 - 1).
// A signature entry is min_x phv_k(x) over the set; the empty set's entries are all 2^32 - 1 in both schemes.
enum class MinHashScheme { kAffine32, kLegacy };
// "affine32" | "legacy"; ConfigError naming the accepted schemes otherwise.
MinHashScheme parse_minhash_scheme(const std::string& name);

// datasketch.hashfunc.sha1_hash32: the first 4 bytes of SHA-1(data), little-endian.
uint32_t sha1_hash32(std::string_view data);
// The first 16 bytes of SHA-1(data) as two little-endian words: a 128-bit content key (exact de-duplication).
std::pair<uint64_t, uint64_t> sha1_hash128(std::string_view data);

// Computes the signatures of sets of byte strings (shingles) for one (num_perm, seed, scheme). The permutation
// parameters are drawn once in the constructor; signature() is const and safe to call from several threads.
class MinHasher {
 public:
  // num_perm in [1, 2^16] (datasketch allows more; a signature that long has no use here); seed as numpy accepts it.
  MinHasher(int num_perm, uint32_t seed = 1, MinHashScheme scheme = MinHashScheme::kAffine32);

  // datasketch's hashvalues after MinHash(num_perm, seed, scheme=...).update_batch(shingles): (num_perm).
  // Duplicated shingles count once (a min is idempotent). Costs one SHA-1 per shingle and num_perm multiply-adds.
  std::vector<uint32_t> signature(std::span<const std::string> shingles) const;
  // Folds one shingle into `hashvalues` (num_perm), which start at all 2^32 - 1 (empty_signature()).
  void update(std::span<uint32_t> hashvalues, std::string_view shingle) const;
  std::vector<uint32_t> empty_signature() const;

  int num_perm() const { return static_cast<int>(a_.size()); }
  uint32_t seed() const { return seed_; }
  MinHashScheme scheme() const { return scheme_; }
  // datasketch's MinHash.permutations: (num_perm) each; values below 2^61 - 1 (legacy) or 2^32 (affine32).
  const std::vector<uint64_t>& a() const { return a_; }
  const std::vector<uint64_t>& b() const { return b_; }

 private:
  uint32_t seed_;
  MinHashScheme scheme_;
  std::vector<uint64_t> a_;  // (num_perm)
  std::vector<uint64_t> b_;  // (num_perm)
};

// datasketch's MinHash.jaccard: the fraction of equal entries of two signatures of one MinHasher, (num_perm) each.
// An unbiased estimate of the Jaccard similarity with standard error sqrt(J (1 - J) / num_perm). DataError when the
// lengths differ or are 0.
double estimated_jaccard(std::span<const uint32_t> x, std::span<const uint32_t> y);

namespace detail {

// numpy's legacy RandomState bit generator for an integer seed: MT19937 seeded by init_genrand(seed) (numpy's
// mt19937_seed, which is what std::mt19937's seeding constructor specifies), and the draws that randint uses.
class LegacyRandomState {
 public:
  explicit LegacyRandomState(uint32_t seed);
  uint32_t next_uint32();
  // numpy's mt19937_next64: the first 32-bit draw is the high word.
  uint64_t next_uint64();
  // RandomState.randint(low, high, dtype=np.uint64) (numpy's random_bounded_uint64, masked): with rng = high - low - 1,
  // no draw for rng = 0, one 32-bit draw for rng = 2^32 - 1, masked rejection on 32-bit draws for rng < 2^32 and on
  // 64-bit draws otherwise, mask = the smallest 2^k - 1 >= rng. high > low.
  uint64_t randint_uint64(uint64_t low, uint64_t high);
  // One element of RandomState.randint(low, high, size, dtype=np.uint32): the same on 32-bit draws. high - low in
  // [1, 2^32].
  uint32_t randint_uint32(uint64_t low, uint64_t high);

 private:
  // A value in [0, rng]: none drawn for 0, one raw draw for 2^32 - 1, masked rejection otherwise.
  uint32_t bounded_uint32(uint32_t rng);
  std::mt19937 mt_;
};

}  // namespace detail
}  // namespace troupe::dataprep
