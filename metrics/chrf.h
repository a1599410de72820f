// sacreBLEU 2.6.0's chrF (Popović 2015) and chrF++ (Popović 2017), equal to sacrebleu's CHRF.corpus_score /
// sentence_score: character n-grams of code points (whitespace removed unless asked), word n-grams after chrF's
// punctuation splitting, the best-F reference per segment, effective-order or epsilon smoothing.
// Not sacreBLEU's bootstrap resampling or significance tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::metrics {

// The options of sacrebleu.metrics.CHRF.
struct ChrfOptions {
  int char_order = 6;          // character n-gram orders 1..char_order
  int word_order = 0;          // word n-gram orders 1..word_order (2: chrF++)
  double beta = 2;             // recall weighs beta times precision
  bool lowercase = false;      // Python str.lower() first
  bool whitespace = false;     // keep whitespace in the character n-grams
  bool eps_smoothing = false;  // chrF++.py's epsilon smoothing instead of sacreBLEU's effective order
  // ConfigError naming the field: negative orders, no order at all, beta negative or not finite.
  void validate() const;
};

// sacrebleu's CHRFScore; the score is on the 0-100 scale.
struct ChrfScore {
  double score = 0;
  int char_order = 6;
  int word_order = 0;
  double beta = 2;
  std::string signature;  // e.g. "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
  // sacrebleu's str(score): "chrF2 = 45.32", "chrF2++ = 41.05".
  std::string format() const;
};

// refs[i] holds the references of hyps[i]; every hypothesis has the same number (>= 1) of references, else
// DataError. Invalid UTF-8 is a DataError naming the line.
ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& options = {});
ChrfScore sentence_chrf(const std::string& hyp, const std::vector<std::string>& refs, const ChrfOptions& options = {});

// The statistics of each segment (for resampling): 3 per order, (hypothesis n-grams, reference n-grams, matches),
// character orders first, of the best reference. chrf_from_stats scores their sum.
std::vector<std::vector<int64_t>> chrf_segment_stats(const std::vector<std::string>& hyps,
                                                     const std::vector<std::vector<std::string>>& refs,
                                                     const ChrfOptions& options = {});
ChrfScore chrf_from_stats(const std::vector<int64_t>& stats, const ChrfOptions& options, int num_refs);

}  // namespace troupe::metrics
