// sacreBLEU 2.6.0's BLEU (Papineni et al., 2002), equal to sacrebleu's BLEU.corpus_score / sentence_score: its
// tokenizers, closest reference length, n-gram clipping against the most generous reference, the four smoothing
// methods and effective order. Not the 'zh', MeCab or SentencePiece tokenizers, nor bootstrap resampling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::metrics {

// The options of sacrebleu.metrics.BLEU.
struct BleuOptions {
  std::string tokenize = "13a";          // "13a" | "none" | "intl" | "char" (sacrebleu's tokenizer names)
  bool lowercase = false;                // Python str.lower() before tokenizing
  std::string smooth_method = "exp";     // "none" | "floor" | "add-k" | "exp" (Chen & Cherry 2014, methods 0-3)
  std::optional<double> smooth_value{};  // floor's value (default 0.1) or add-k's k (default 1, a whole number)
  int max_ngram_order = 4;               // n-gram orders 1..max_ngram_order
  bool effective_order = false;          // average only over the orders the hypothesis has n-grams of
  // ConfigError naming the field: unknown tokenizer or smoothing, order < 1, negative or non-whole add-k value.
  void validate() const;
};

// sacrebleu's BLEUScore. Precisions and score are on the 0-100 scale.
struct BleuScore {
  double score = 0;
  std::vector<int64_t> counts;     // (max_ngram_order) matched n-grams; add-k adds k to orders >= 2, as sacrebleu
  std::vector<int64_t> totals;     // (max_ngram_order) hypothesis n-grams; likewise smoothed by add-k
  std::vector<double> precisions;  // (max_ngram_order) smoothed precisions, 0-100
  double bp = 0;                   // brevity penalty
  int64_t sys_len = 0;             // hypothesis tokens
  int64_t ref_len = 0;             // closest-reference tokens
  std::string signature;           // e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
  // sacrebleu's str(score): "BLEU = 31.20 60.0/37.5/25.0/14.3 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)".
  std::string format() const;
};

// The sufficient statistics of one segment, or of a sum of segments (sacrebleu's per-segment stats list).
struct BleuStats {
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  std::vector<int64_t> counts;  // (max_ngram_order)
  std::vector<int64_t> totals;  // (max_ngram_order)
  BleuStats& operator+=(const BleuStats& other);
};

// refs[i] holds the references of hyps[i]; every hypothesis has the same number (>= 1) of references, else
// DataError. Invalid UTF-8 is a DataError naming the line.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& options = {});
// sacrebleu.sentence_bleu's defaults: BleuOptions with effective_order on.
BleuOptions sentence_bleu_options();
// sacrebleu.sentence_bleu: the corpus score of one segment (effective order on by default).
BleuScore sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs,
                        const BleuOptions& options = sentence_bleu_options());

// The statistics of each segment (for resampling), and the score of summed statistics from `num_refs` references.
std::vector<BleuStats> bleu_segment_stats(const std::vector<std::string>& hyps,
                                          const std::vector<std::vector<std::string>>& refs,
                                          const BleuOptions& options = {});
BleuScore bleu_from_stats(BleuStats stats, const BleuOptions& options, int num_refs);

}  // namespace troupe::metrics
