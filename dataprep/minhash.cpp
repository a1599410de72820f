#include "dataprep/minhash.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/errors.h"

namespace troupe::dataprep {
namespace {

constexpr uint64_t kMersennePrime = (uint64_t{1} << 61) - 1;  // datasketch's _mersenne_prime
constexpr uint32_t kMaxHash = 0xFFFFFFFFu;                    // _max_hash, also the empty set's entry
constexpr int kMaxPerm = 1 << 16;

uint64_t load_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// MurmurHash3's 32-bit finalizer (datasketch's _fmix(hv, 32)).
uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  return h ^ (h >> 16);
}

// numpy's gen_mask: the smallest 2^k - 1 >= max.
uint64_t gen_mask(uint64_t max) {
  uint64_t mask = max;
  for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
  return mask;
}

// SHA-1 through one pre-fetched EVP_MD and a per-thread context: OpenSSL 3's one-shot SHA1() fetches the algorithm
// under a read-write lock on every call, which cost ~30% of MinHashing 1 KB documents.
void sha1(std::string_view data, unsigned char* md) {
  static EVP_MD* const kSha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (kSha1 == nullptr || !ctx || EVP_DigestInit_ex2(ctx.get(), kSha1, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), md, nullptr) != 1) {
    throw Error("OpenSSL SHA-1 failed");
  }
}

}  // namespace

MinHashScheme parse_minhash_scheme(const std::string& name) {
  if (name == "affine32") return MinHashScheme::kAffine32;
  if (name == "legacy") return MinHashScheme::kLegacy;
  throw ConfigError("MinHash scheme '" + name + "': expected affine32 or legacy");
}

uint32_t sha1_hash32(std::string_view data) {
  unsigned char md[SHA_DIGEST_LENGTH];
  sha1(data, md);
  return static_cast<uint32_t>(load_le(md, 4));
}

std::pair<uint64_t, uint64_t> sha1_hash128(std::string_view data) {
  unsigned char md[SHA_DIGEST_LENGTH];
  sha1(data, md);
  return {load_le(md, 8), load_le(md + 8, 8)};
}

MinHasher::MinHasher(int num_perm, uint32_t seed, MinHashScheme scheme) : seed_(seed), scheme_(scheme) {
  if (num_perm < 1 || num_perm > kMaxPerm) {
    throw ConfigError("MinHash num_perm " + std::to_string(num_perm) + ": expected 1.." + std::to_string(kMaxPerm));
  }
  detail::LegacyRandomState gen(seed);
  a_.resize(num_perm);
  b_.resize(num_perm);
  if (scheme == MinHashScheme::kLegacy) {
    // datasketch: [(randint(1, p), randint(0, p)) for _ in range(num_perm)], scalar draws interleaved.
    for (int k = 0; k < num_perm; ++k) {
      a_[k] = gen.randint_uint64(1, kMersennePrime);
      b_[k] = gen.randint_uint64(0, kMersennePrime);
    }
    return;
  }
  // datasketch: a = randint(0, 2^31, num_perm) * 2 + 1; b = randint(0, 2^32, num_perm), sized uint32 draws.
  for (auto& a : a_) a = uint64_t{gen.randint_uint32(0, uint64_t{1} << 31)} * 2 + 1;
  for (auto& b : b_) b = gen.randint_uint32(0, uint64_t{1} << 32);
}

std::vector<uint32_t> MinHasher::empty_signature() const { return std::vector<uint32_t>(a_.size(), kMaxHash); }

void MinHasher::update(std::span<uint32_t> hashvalues, std::string_view shingle) const {
  const size_t n = a_.size();
  if (hashvalues.size() != n) {
    throw DataError("MinHash update: signature of " + std::to_string(hashvalues.size()) + " values, expected " +
                    std::to_string(n));
  }
  const uint32_t hv = sha1_hash32(shingle);
  if (scheme_ == MinHashScheme::kLegacy) {
    // numpy's uint64 arithmetic wraps: a * hv + b is taken mod 2^64 before the mod p, as here.
    for (size_t k = 0; k < n; ++k) {
      const auto phv = static_cast<uint32_t>(((a_[k] * hv + b_[k]) % kMersennePrime) & kMaxHash);
      hashvalues[k] = std::min(hashvalues[k], phv);
    }
    return;
  }
  const uint32_t h = fmix32(hv);
  for (size_t k = 0; k < n; ++k) {
    const uint32_t phv = static_cast<uint32_t>(a_[k]) * h + static_cast<uint32_t>(b_[k]);  // wraps mod 2^32
    hashvalues[k] = std::min(hashvalues[k], phv);
  }
}

std::vector<uint32_t> MinHasher::signature(std::span<const std::string> shingles) const {
  auto hashvalues = empty_signature();
  for (const auto& s : shingles) update(hashvalues, s);
  return hashvalues;
}

double estimated_jaccard(std::span<const uint32_t> x, std::span<const uint32_t> y) {
  if (x.size() != y.size() || x.empty()) {
    throw DataError("MinHash jaccard: signatures of " + std::to_string(x.size()) + " and " + std::to_string(y.size()) +
                    " values");
  }
  size_t equal = 0;
  for (size_t k = 0; k < x.size(); ++k) equal += x[k] == y[k];
  return static_cast<double>(equal) / static_cast<double>(x.size());
}

namespace detail {

LegacyRandomState::LegacyRandomState(uint32_t seed) : mt_(seed) {}

uint32_t LegacyRandomState::next_uint32() { return static_cast<uint32_t>(mt_()); }

uint64_t LegacyRandomState::next_uint64() {
  const uint64_t hi = next_uint32();
  return hi << 32 | next_uint32();
}

uint64_t LegacyRandomState::randint_uint64(uint64_t low, uint64_t high) {
  if (high <= low) throw ConfigError("randint: high must exceed low");
  const uint64_t rng = high - low - 1;
  if (rng == 0) return low;
  if (rng <= 0xFFFFFFFFu) return low + bounded_uint32(static_cast<uint32_t>(rng));
  // rng = 2^64 - 1 (an inclusive full range) cannot arise from an exclusive uint64 `high`.
  const uint64_t mask = gen_mask(rng);
  uint64_t val;
  while ((val = next_uint64() & mask) > rng) {
  }
  return low + val;
}

uint32_t LegacyRandomState::randint_uint32(uint64_t low, uint64_t high) {
  if (high <= low || high - low > (uint64_t{1} << 32)) throw ConfigError("randint: high - low must be in [1, 2^32]");
  return static_cast<uint32_t>(low + bounded_uint32(static_cast<uint32_t>(high - low - 1)));
}

uint32_t LegacyRandomState::bounded_uint32(uint32_t rng) {
  if (rng == 0) return 0;
  if (rng == 0xFFFFFFFFu) return next_uint32();
  const auto mask = static_cast<uint32_t>(gen_mask(rng));
  uint32_t val;
  while ((val = next_uint32() & mask) > rng) {
  }
  return val;
}

}  // namespace detail
}  // namespace troupe::dataprep
