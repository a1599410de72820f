#include "metrics/chrf.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>

#include "core/errors.h"
#include "metrics/ngram_ids.h"
#include "metrics/sacrebleu_tokenizers.h"
#include "metrics/unicode.h"

namespace troupe::metrics {
namespace {

// CHRF._compute_f_score, operation for operation. stats: 3 per order (hyp, ref, match).
double f_score(const int64_t* stats, int order, const ChrfOptions& options) {
  const double eps = 1e-16;
  const double factor = options.beta * options.beta;
  double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (int i = 0; i < order; ++i) {
    const int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? static_cast<double>(n_match) / static_cast<double>(n_hyp) : eps;
    const double rec = n_ref > 0 ? static_cast<double>(n_match) / static_cast<double>(n_ref) : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (options.eps_smoothing) return 100 * score / order;
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec != 0.0) {
    score = (1 + factor) * avg_prec * avg_rec;
    score /= (factor * avg_prec) + avg_rec;
    return 100 * score;
  }
  return 0.0;
}

// Whether `word` is a single code point (Python's len(w) == 1).
bool one_code_point(std::string_view word) {
  size_t i = 0;
  detail::next_code_point(word, i);
  return i == word.size();
}

// A segment after CHRF._preprocess_segment: its characters for the n-grams and its words after
// CHRF._remove_punctuation (views into the input or `lowered`).
struct Segment {
  std::string lowered;
  std::vector<char32_t> chars;
  std::vector<std::string_view> pieces, words;
};

// Counts each segment's n-gram matches against each of its references and keeps the best reference's statistics,
// reusing its buffers from segment to segment. Hypothesis n-grams get dense ids (key: the id of the first n-1
// characters or words, and the last one); reference n-grams are only looked up.
class SegmentCounter {
 public:
  explicit SegmentCounter(const ChrfOptions& options)
      : options_(options), order_count_(options.char_order + options.word_order) {}

  int order_count() const { return order_count_; }

  // Adds the best reference's statistics (3 * order_count) of (hyp, refs) to `sum`.
  void add(std::string_view hyp, const std::vector<std::string>& refs, int64_t* sum) {
    preprocess(hyp, hyp_);
    count_hypothesis();
    best_.assign(3 * order_count_, 0);
    double best_f = -1.0;
    for (const std::string& ref : refs) {
      preprocess(ref, ref_);
      match_reference();
      const double f = f_score(stats_.data(), order_count_, options_);
      if (f > best_f) {
        best_f = f;
        best_ = stats_;
      }
    }
    for (int k = 0; k < 3 * order_count_; ++k) sum[k] += best_[k];
  }

 private:
  void preprocess(std::string_view line, Segment& s) const {
    std::string_view text = line;
    if (options_.lowercase) {
      s.lowered = lower(line);
      text = s.lowered;
    }
    s.chars.clear();
    for (size_t i = 0; i < text.size();) {
      const char32_t c = detail::next_code_point(text, i);
      if (options_.whitespace || !is_space(c)) s.chars.push_back(c);
    }
    s.words.clear();
    if (options_.word_order == 0) return;
    s.pieces.clear();
    detail::split_views(text, s.pieces);
    for (const std::string_view w : s.pieces) {
      // CHRF._remove_punctuation: a trailing, else a leading, ASCII punctuation mark becomes its own word.
      if (one_code_point(w)) {
        s.words.push_back(w);
      } else if (is_ascii_punctuation(static_cast<unsigned char>(w.back()))) {
        s.words.push_back(w.substr(0, w.size() - 1));
        s.words.push_back(w.substr(w.size() - 1));
      } else if (is_ascii_punctuation(static_cast<unsigned char>(w.front()))) {
        s.words.push_back(w.substr(0, 1));
        s.words.push_back(w.substr(1));
      } else {
        s.words.push_back(w);
      }
    }
  }

  // Calls visit(order index, id) for each n-gram of `s` that the hypothesis has (all of them for the hypothesis
  // itself, when `insert`); returns nothing. Character orders come first, then word orders.
  template <class Visit>
  void for_each_ngram(const Segment& s, bool insert, Visit visit) {
    bool inserted = false;
    const auto lookup = [&](uint64_t key) {
      if (!insert) return ngram_ids_.find(key);
      const uint32_t id = ngram_ids_.insert(key, &inserted);
      if (inserted) {
        hyp_count_.push_back(0);
        order_of_.push_back(0);
      }
      return id;
    };
    const auto chain = [&](const auto& units, uint32_t root, int max_order, int first_order) {
      for (size_t i = 0; i < units.size(); ++i) {
        uint32_t prefix = root;
        for (int n = 1; n <= max_order && i + n <= units.size(); ++n) {
          const uint32_t unit = units[i + n - 1];
          if (unit == detail::TokenIds::kNone) break;
          const uint32_t id = lookup(detail::ngram_key(prefix, unit));
          if (id == detail::NgramIds::kNone) break;  // no longer n-gram from here is in the hypothesis either
          if (insert) order_of_[id] = first_order + n - 1;
          visit(id);
          prefix = id;
        }
      }
    };
    chain(s.chars, detail::kCharRoot, options_.char_order, 0);
    if (options_.word_order == 0) return;
    word_ids_.clear();
    for (const std::string_view w : s.words)
      word_ids_.push_back(insert ? token_ids_.insert(w, &inserted) : token_ids_.find(w));
    chain(word_ids_, detail::kWordRoot, options_.word_order, options_.char_order);
  }

  void count_hypothesis() {
    token_ids_.clear();
    ngram_ids_.clear();
    hyp_count_.clear();
    order_of_.clear();
    for_each_ngram(hyp_, true, [&](uint32_t id) { ++hyp_count_[id]; });
    ref_count_.assign(hyp_count_.size(), 0);
  }

  // CHRF._get_match_statistics of every order into stats_.
  void match_reference() {
    stats_.assign(3 * order_count_, 0);
    touched_.clear();
    for_each_ngram(ref_, false, [&](uint32_t id) {
      if (ref_count_[id]++ == 0) touched_.push_back(id);
    });
    for (const uint32_t id : touched_) {
      stats_[3 * order_of_[id] + 2] += std::min(hyp_count_[id], ref_count_[id]);
      ref_count_[id] = 0;
    }
    for (int o = 0; o < order_count_; ++o) {
      const bool chars = o < options_.char_order;
      const int n = chars ? o + 1 : o - options_.char_order + 1;
      const auto hyp_units = static_cast<int64_t>(chars ? hyp_.chars.size() : hyp_.words.size());
      const auto ref_units = static_cast<int64_t>(chars ? ref_.chars.size() : ref_.words.size());
      const int64_t ref_total = std::max<int64_t>(0, ref_units - n + 1);
      stats_[3 * o] = ref_total > 0 ? std::max<int64_t>(0, hyp_units - n + 1) : 0;  // "if ref_ngrams else 0"
      stats_[3 * o + 1] = ref_total;
    }
  }

  const ChrfOptions& options_;
  int order_count_;
  Segment hyp_, ref_;
  detail::TokenIds token_ids_;      // hypothesis words
  detail::NgramIds ngram_ids_;      // hypothesis character and word n-grams
  std::vector<uint32_t> word_ids_;  // (words) token ids, kNone when not in the hypothesis
  std::vector<int64_t> hyp_count_;  // (n-gram ids) count in the hypothesis
  std::vector<int64_t> ref_count_;  // (n-gram ids) count in the current reference; zero between references
  std::vector<int> order_of_;       // (n-gram ids) order index: n - 1 for characters, char_order + n - 1 for words
  std::vector<uint32_t> touched_;   // ids with a nonzero ref_count_
  std::vector<int64_t> stats_, best_;
};

std::string beta_text(double beta) {
  // Python prints sacrebleu's default int beta as "2"; a whole double is shown the same way.
  if (beta == std::floor(beta) && std::abs(beta) < 1e15) return fmt::format("{}", static_cast<int64_t>(beta));
  return fmt::format("{}", beta);
}

ChrfScore score_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs,
                       const ChrfOptions& options, std::string_view caller) {
  options.validate();
  const int num_refs = detail::check_corpus(hyps, refs, caller);
  SegmentCounter counter(options);
  std::vector<int64_t> sum(3 * counter.order_count(), 0);
  for (size_t i = 0; i < hyps.size(); ++i) counter.add(hyps[i], refs[i], sum.data());
  return chrf_from_stats(sum, options, num_refs);
}

}  // namespace

void ChrfOptions::validate() const {
  if (char_order < 0) throw ConfigError(fmt::format("ChrfOptions.char_order: {} (must be >= 0)", char_order));
  if (word_order < 0) throw ConfigError(fmt::format("ChrfOptions.word_order: {} (must be >= 0)", word_order));
  if (char_order + word_order < 1) throw ConfigError("ChrfOptions: char_order + word_order must be >= 1");
  if (!std::isfinite(beta) || beta < 0) throw ConfigError(fmt::format("ChrfOptions.beta: {} (must be >= 0)", beta));
}

std::string ChrfScore::format() const {
  return fmt::format("chrF{}{} = {}", beta_text(beta), std::string(std::max(word_order, 0), '+'),
                     detail::fixed(score, 2));
}

ChrfScore chrf_from_stats(const std::vector<int64_t>& stats, const ChrfOptions& options, int num_refs) {
  options.validate();
  const int order = options.char_order + options.word_order;
  if (static_cast<int>(stats.size()) != 3 * order) {
    throw DataError(fmt::format("chrf_from_stats: {} statistics for {} orders (3 per order)", stats.size(), order));
  }
  ChrfScore out;
  out.score = f_score(stats.data(), order, options);
  out.char_order = options.char_order;
  out.word_order = options.word_order;
  out.beta = options.beta;
  out.signature =
      fmt::format("nrefs:{}|case:{}|eff:{}|nc:{}|nw:{}|space:{}|version:{}", num_refs,
                  options.lowercase ? "lc" : "mixed", options.eps_smoothing ? "no" : "yes", options.char_order,
                  options.word_order, options.whitespace ? "yes" : "no", detail::kSacrebleuVersion);
  return out;
}

std::vector<std::vector<int64_t>> chrf_segment_stats(const std::vector<std::string>& hyps,
                                                     const std::vector<std::vector<std::string>>& refs,
                                                     const ChrfOptions& options) {
  options.validate();
  detail::check_corpus(hyps, refs, "chrf_segment_stats");
  SegmentCounter counter(options);
  std::vector<std::vector<int64_t>> out(hyps.size(), std::vector<int64_t>(3 * counter.order_count(), 0));
  for (size_t i = 0; i < hyps.size(); ++i) counter.add(hyps[i], refs[i], out[i].data());
  return out;
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& options) {
  return score_corpus(hyps, refs, options, "corpus_chrf");
}

ChrfScore sentence_chrf(const std::string& hyp, const std::vector<std::string>& refs, const ChrfOptions& options) {
  return score_corpus({&hyp, 1}, {&refs, 1}, options, "sentence_chrf");
}

}  // namespace troupe::metrics
