// Seeded EDA-style augmentation of SFT text (Wei & Zou 2019, "EDA"): synonym replacement from WordNet, random
// deletion and random swap, each word touched with a configured probability. Deterministic for a seed on every
// platform (std::mt19937_64, whose sequence the standard fixes, and no std:: distributions, whose aren't). Not EDA's
// random insertion, stop-word list or lower-casing and punctuation stripping, and not a paraphraser: the output is the
// words joined by single spaces, so line breaks are lost.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/wordnet.h"

namespace troupe::dataprep {

struct AugmentConfig {
  double p_synonym = 0.1;  // per word: replace by a WordNet synonym (if it has one other than itself)
  double p_delete = 0.1;   // per word: delete (at least one word is always kept)
  double p_swap = 0.1;     // per position: swap with a uniformly chosen position
  void validate() const;   // ConfigError for a probability outside [0, 1]
};

// A deterministic generator: std::mt19937_64 (its output sequence is fixed by the standard) with the uniform draws
// defined here instead of std::uniform_*_distribution (whose algorithms differ between standard libraries).
class AugmentRng {
 public:
  explicit AugmentRng(uint64_t seed) : engine_(seed) {}
  double uniform();            // [0, 1): the top 53 bits of one engine output
  uint64_t below(uint64_t n);  // [0, n): floor(uniform() * n), n >= 1; bias ~n / 2^53, none for word counts

 private:
  std::mt19937_64 engine_;
};

// The three operations on a word list (Python str.split() pieces), each drawing from `rng` in word order.
// Synonym replacement: a word with synonyms(lower(word)) other than itself (WordNet::synonyms: lemma names of its
// synsets, collocations left out) becomes one of them, uniformly; a word is drawn for only if it has any.
std::vector<std::string> synonym_replace(const std::vector<std::string>& words, double p,
                                         const metrics::WordNet& wordnet, AugmentRng& rng);
// Each word deleted with probability p; if all would go, one of them, uniformly, stays (EDA's rule); [] stays [].
std::vector<std::string> random_delete(const std::vector<std::string>& words, double p, AugmentRng& rng);
// For i = 0..n-1: with probability p, swap words i and below(n). The multiset of words is kept.
std::vector<std::string> random_swap(std::vector<std::string> words, double p, AugmentRng& rng);

// Synonyms, then deletion, then swap on text.split(), joined by single spaces. DataError for malformed UTF-8.
std::string augment(std::string_view text, uint64_t seed, const AugmentConfig& config,
                    const metrics::WordNet& wordnet = metrics::WordNet::shared());

}  // namespace troupe::dataprep
