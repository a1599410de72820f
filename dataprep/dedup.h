// Exact and near-duplicate removal for `troupe data clean`: a 128-bit content key of the normalised text for exact
// duplicates, and MinHash signatures (dataprep/minhash.h) banded as datasketch's MinHashLSH bands them for near
// duplicates, clustered by union-find and one document (the first) kept per cluster. In memory, one process: not a
// distributed or on-disk index (a signature costs 4 * num_perm bytes per document kept in memory until finish()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dataprep/minhash.h"

namespace troupe::dataprep {

// What a shingle is. The text is first normalised: NFC (dataprep::normalize), clean_whitespace, then Python's
// str.lower (metrics::lower).
//   kWords: a word is a maximal run of code points that Python's str.isalnum accepts; a shingle is `k` consecutive
//     words joined by one space, e.g. k = 2 of "Hello, World! foo-bar" -> {"hello world", "world foo", "foo bar"}.
//   kChars: a shingle is `k` consecutive code points of the normalised text, spaces and newlines included.
// A text with fewer than k units (but at least one) has one shingle, all of its units; a text with none has none.
// The shingle's UTF-8 bytes are what MinHash hashes.
enum class ShingleKind { kWords, kChars };
// "words" | "chars"; ConfigError otherwise.
ShingleKind parse_shingle_kind(const std::string& name);

// NFC, clean_whitespace, lower: the text that exact keys and shingles are taken of. DataError naming `what` for
// malformed UTF-8.
std::string dedup_normal_text(std::string_view text, const std::string& what = "text");
// The shingles of already-normalised text (dedup_normal_text), in order of occurrence, repeats kept.
std::vector<std::string> shingles(std::string_view normal_text, ShingleKind kind, int k);

// LSH banding: `bands` bands of `rows` signature entries each (entries [i * rows, (i + 1) * rows) for band i); two
// documents are candidates when any band is equal. bands * rows <= num_perm; the rest of the signature is unused.
struct LshParams {
  int bands = 0;
  int rows = 0;
};
// datasketch's _false_positive_probability: the integral over s in [0, threshold] of 1 - (1 - s^r)^b.
double lsh_false_positive_probability(double threshold, int bands, int rows);
// datasketch's _false_negative_probability: the integral over s in [threshold, 1] of (1 - s^r)^b.
double lsh_false_negative_probability(double threshold, int bands, int rows);
// datasketch's MinHashLSH._optimal_param: the (b, r) with b * r <= num_perm minimising fp_weight * fp + fn_weight *
// fn, the first in (b, r) lexicographic order on ties. The integrals are composite Gauss-Legendre (exact to ~1e-14
// against scipy's quad to ~1e-10). Costs ~num_perm * ln(num_perm) pairs of integrals: ~20 ms for num_perm = 256.
LshParams optimal_lsh_params(double threshold, int num_perm, double fp_weight = 0.5, double fn_weight = 0.5);

namespace detail {
struct Key128Hash {
  size_t operator()(const std::pair<uint64_t, uint64_t>& key) const { return key.first; }  // already uniform (SHA-1)
};
}  // namespace detail

struct DedupConfig {
  bool exact = true;                                // remove exact duplicates of the normalised text
  bool near = true;                                 // remove MinHash near-duplicates
  double threshold = 0.8;                           // Jaccard similarity of a near-duplicate pair, in (0, 1)
  int num_perm = 128;                               // MinHash permutations (signature length)
  uint32_t seed = 1;                                // MinHash seed (datasketch's default)
  MinHashScheme scheme = MinHashScheme::kAffine32;  // datasketch's default scheme
  ShingleKind shingle = ShingleKind::kWords;        // word or character shingles
  int shingle_size = 5;                             // units per shingle (k), >= 1
  LshParams lsh{};                                  // {0, 0}: optimal_lsh_params(threshold, num_perm, weights)
  double fp_weight = 0.5;  // optimal_lsh_params' weight of false positives (datasketch's weights[0]), in [0, 1]
  double fn_weight = 0.5;  // ... of false negatives (weights[1]); the two sum to 1, as datasketch requires
  bool verify = true;      // a candidate pair joins a cluster only if its estimated Jaccard >= threshold
  void validate() const;
};

// What Deduplicator::add needs of one document: its exact key and MinHash signature. Computing it is most of the cost
// and depends on nothing but the text, so Deduplicator::sketch is const and the pipeline's workers call it in
// parallel; add() then only touches the index, in input order.
struct DedupSketch {
  std::pair<uint64_t, uint64_t> key{};  // SHA-1 key of the normalised text (when exact)
  std::vector<uint32_t> signature;      // (num_perm) when near; empty otherwise
};

struct DedupResult {
  std::vector<size_t> kept;     // indices of the kept documents, ascending
  std::vector<size_t> cluster;  // (N) the kept document each document's cluster keeps (itself when kept)
  size_t exact_removed = 0;     // removed as an exact duplicate of an earlier document
  size_t near_removed = 0;      // removed as a near-duplicate (not exact) of a document of its cluster
  LshParams lsh{};              // the banding used
};

// Streams documents: add() each in order, then finish(). Deterministic for a config: the clusters are the connected
// components of the graph whose edges are the pairs that share a band (and pass verification), which does not depend
// on the order candidates are met in; each cluster keeps its lowest index. An exact duplicate is not MinHashed.
class Deduplicator {
 public:
  explicit Deduplicator(DedupConfig config);
  // Index of the document (0, 1, ...). DataError naming the document for malformed UTF-8.
  size_t add(std::string_view text);
  // The same for a sketch() of the text: add(sketch(text)) == add(text).
  size_t add(const DedupSketch& sketch);
  // Thread-safe. DataError naming `what` for malformed UTF-8.
  DedupSketch sketch(std::string_view text, const std::string& what = "text") const;
  DedupResult finish() const;
  const LshParams& lsh() const { return lsh_; }

 private:
  size_t find(size_t i) const;
  void join(size_t i, size_t j);
  void add_near(size_t index, const std::vector<uint32_t>& sig);

  DedupConfig config_;
  MinHasher hasher_;
  LshParams lsh_;
  std::unordered_map<std::pair<uint64_t, uint64_t>, size_t, detail::Key128Hash> first_by_key_;  // key -> 1st doc
  std::vector<size_t> exact_of_;                   // (N) the earlier document it duplicates exactly, or itself
  mutable std::vector<size_t> parent_;             // (N) union-find; a root is its cluster's lowest index
  std::vector<std::vector<uint32_t>> signatures_;  // (N, num_perm) when verifying; empty for exact duplicates
  std::vector<std::unordered_map<uint64_t, std::vector<uint32_t>>> buckets_;  // (bands) band hash -> documents
};

// All of `docs` through one Deduplicator.
DedupResult deduplicate(const std::vector<std::string>& docs, const DedupConfig& config);

}  // namespace troupe::dataprep
