#include "metrics/bleu.h"

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

enum class Tokenizer { k13a, kNone, kIntl, kChar };
enum class Smoothing { kNone, kFloor, kAddK, kExp };

Tokenizer parse_tokenizer(const std::string& name) {
  if (name == "13a") return Tokenizer::k13a;
  if (name == "none") return Tokenizer::kNone;
  if (name == "intl") return Tokenizer::kIntl;
  if (name == "char") return Tokenizer::kChar;
  throw ConfigError(fmt::format(
      "BleuOptions.tokenize: unknown tokenizer '{}' (13a, none, intl or char; sacreBLEU's zh, MeCab and SentencePiece "
      "tokenizers are not implemented)",
      name));
}

Smoothing parse_smoothing(const std::string& name) {
  if (name == "none") return Smoothing::kNone;
  if (name == "floor") return Smoothing::kFloor;
  if (name == "add-k") return Smoothing::kAddK;
  if (name == "exp") return Smoothing::kExp;
  throw ConfigError(fmt::format("BleuOptions.smooth_method: unknown method '{}' (none, floor, add-k or exp)", name));
}

// BLEU.SMOOTH_DEFAULTS, for the methods that take a value.
double smooth_value_of(const BleuOptions& options, Smoothing method) {
  if (options.smooth_value) return *options.smooth_value;
  return method == Smoothing::kFloor ? 0.1 : 1.0;
}

// BLEU._get_closest_ref_len: the reference length nearest the hypothesis length, the shorter one on a tie.
int64_t closest_ref_len(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t closest_diff = -1, closest_len = -1;
  for (const int64_t ref_len : ref_lens) {
    const int64_t diff = std::abs(hyp_len - ref_len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = ref_len;
    } else if (diff == closest_diff && ref_len < closest_len) {
      closest_len = ref_len;
    }
  }
  return closest_len;
}

// Tokenizes segments and counts their clipped n-gram matches, reusing its buffers from segment to segment.
// A hypothesis n-gram gets a dense id (its key: the id of its first n-1 tokens and the id of its last token);
// reference n-grams are only looked up, since one absent from the hypothesis cannot match.
class SegmentCounter {
 public:
  explicit SegmentCounter(const BleuOptions& options)
      : tokenizer_(parse_tokenizer(options.tokenize)),
        lowercase_(options.lowercase),
        max_order_(options.max_ngram_order) {}

  // Adds the statistics of (hyp, refs) to `sum` (counts and totals sized max_ngram_order).
  void add(std::string_view hyp, const std::vector<std::string>& refs, BleuStats& sum) {
    tokenize(hyp, hyp_);
    count_hypothesis();
    ref_lens_.clear();
    for (const std::string& ref : refs) {
      tokenize(ref, ref_);
      ref_lens_.push_back(static_cast<int64_t>(ref_.tokens.size()));
      clip_against(ref_.tokens);
    }
    const auto hyp_len = static_cast<int64_t>(hyp_.tokens.size());
    for (uint32_t id = 0; id < hyp_count_.size(); ++id)
      sum.counts[order_[id]] += std::min(hyp_count_[id], ref_max_[id]);
    for (int n = 1; n <= max_order_; ++n) sum.totals[n - 1] += std::max<int64_t>(0, hyp_len - n + 1);
    sum.sys_len += hyp_len;
    sum.ref_len += closest_ref_len(hyp_len, ref_lens_);
  }

 private:
  struct Buffers {
    std::string lowered, text, scratch;
    std::u32string a, b;
    std::vector<std::string_view> tokens;  // views into the input, `lowered` or `text`
  };

  // BLEU._preprocess_segment then str.split(): the tokens of `line`.
  void tokenize(std::string_view line, Buffers& b) const {
    std::string_view s = line;
    if (lowercase_) {
      b.lowered = lower(line);
      s = b.lowered;
    }
    s = detail::rstrip(s);
    b.tokens.clear();
    switch (tokenizer_) {
      case Tokenizer::kNone: detail::split_views(s, b.tokens); break;
      case Tokenizer::k13a:
        detail::tokenize_13a_unsplit(s, b.text, b.scratch);
        detail::split_views(b.text, b.tokens);
        break;
      case Tokenizer::kIntl:
        detail::tokenize_intl_unsplit(s, b.text, b.a, b.b);
        detail::split_views(b.text, b.tokens);
        break;
      case Tokenizer::kChar:
        // " ".join(line).split(): every code point but whitespace is a token.
        for (size_t i = 0; i < s.size();) {
          const size_t start = i;
          if (!is_space(detail::next_code_point(s, i))) b.tokens.push_back(s.substr(start, i - start));
        }
        break;
    }
  }

  void count_hypothesis() {
    token_ids_.clear();
    ngram_ids_.clear();
    hyp_count_.clear();
    ref_max_.clear();
    order_.clear();
    token_of_.clear();
    bool inserted = false;
    for (const std::string_view token : hyp_.tokens) token_of_.push_back(token_ids_.insert(token, &inserted));
    const size_t length = token_of_.size();
    for (size_t i = 0; i < length; ++i) {
      uint32_t prefix = detail::kWordRoot;
      for (int n = 1; n <= max_order_ && i + n <= length; ++n) {
        const uint32_t id = ngram_ids_.insert(detail::ngram_key(prefix, token_of_[i + n - 1]), &inserted);
        if (inserted) {
          hyp_count_.push_back(0);
          ref_max_.push_back(0);
          order_.push_back(n - 1);
        }
        ++hyp_count_[id];
        prefix = id;
      }
    }
    ref_count_.assign(hyp_count_.size(), 0);
  }

  // Raises ref_max_ to this reference's count of each hypothesis n-gram (the merge of reference Counters by max).
  void clip_against(const std::vector<std::string_view>& tokens) {
    ref_token_of_.clear();
    for (const std::string_view token : tokens) ref_token_of_.push_back(token_ids_.find(token));
    touched_.clear();
    const size_t length = ref_token_of_.size();
    for (size_t i = 0; i < length; ++i) {
      uint32_t prefix = detail::kWordRoot;
      for (int n = 1; n <= max_order_ && i + n <= length; ++n) {
        const uint32_t token = ref_token_of_[i + n - 1];
        if (token == detail::TokenIds::kNone) break;
        const uint32_t id = ngram_ids_.find(detail::ngram_key(prefix, token));
        if (id == detail::NgramIds::kNone) break;  // no longer n-gram from here is in the hypothesis either
        if (ref_count_[id]++ == 0) touched_.push_back(id);
        prefix = id;
      }
    }
    for (const uint32_t id : touched_) {
      ref_max_[id] = std::max(ref_max_[id], ref_count_[id]);
      ref_count_[id] = 0;
    }
  }

  Tokenizer tokenizer_;
  bool lowercase_;
  int max_order_;
  Buffers hyp_, ref_;
  detail::TokenIds token_ids_;          // hypothesis tokens
  detail::NgramIds ngram_ids_;          // hypothesis n-grams
  std::vector<uint32_t> token_of_;      // (hyp tokens) token ids
  std::vector<uint32_t> ref_token_of_;  // (ref tokens) token ids, kNone when not in the hypothesis
  std::vector<int64_t> hyp_count_;      // (n-gram ids) count in the hypothesis
  std::vector<int64_t> ref_max_;        // (n-gram ids) largest count in one reference
  std::vector<int64_t> ref_count_;      // (n-gram ids) count in the current reference; zero between references
  std::vector<int> order_;              // (n-gram ids) n - 1
  std::vector<uint32_t> touched_;       // ids with a nonzero ref_count_
  std::vector<int64_t> ref_lens_;
};

BleuStats zero_stats(int max_order) {
  BleuStats stats;
  stats.counts.assign(max_order, 0);
  stats.totals.assign(max_order, 0);
  return stats;
}

std::string signature_of(const BleuOptions& options, int num_refs) {
  std::string smooth = options.smooth_method;
  const Smoothing method = parse_smoothing(options.smooth_method);
  if (method == Smoothing::kFloor || method == Smoothing::kAddK) {
    smooth += fmt::format("[{}]", detail::fixed(smooth_value_of(options, method), 2));
  }
  return fmt::format("nrefs:{}|case:{}|eff:{}|tok:{}|smooth:{}|version:{}", num_refs,
                     options.lowercase ? "lc" : "mixed", options.effective_order ? "yes" : "no", options.tokenize,
                     smooth, detail::kSacrebleuVersion);
}

// utils.my_log: log, floored at -9999999999 for a zero precision.
double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

void BleuOptions::validate() const {
  parse_tokenizer(tokenize);
  const Smoothing method = parse_smoothing(smooth_method);
  if (max_ngram_order < 1) {
    throw ConfigError(fmt::format("BleuOptions.max_ngram_order: {} (must be >= 1)", max_ngram_order));
  }
  if (smooth_value && !(*smooth_value >= 0)) {
    throw ConfigError(fmt::format("BleuOptions.smooth_value: {} (must be >= 0)", *smooth_value));
  }
  if (method == Smoothing::kAddK && smooth_value && *smooth_value != std::floor(*smooth_value)) {
    throw ConfigError(fmt::format(
        "BleuOptions.smooth_value: add-k with k = {} (sacreBLEU adds k to the integer counts it reports; k must be a "
        "whole number here)",
        *smooth_value));
  }
}

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  if (counts.size() != other.counts.size() || totals.size() != other.totals.size()) {
    throw DataError(fmt::format("BleuStats: adding statistics of {} orders to statistics of {}", other.counts.size(),
                                counts.size()));
  }
  sys_len += other.sys_len;
  ref_len += other.ref_len;
  for (size_t n = 0; n < counts.size(); ++n) {
    counts[n] += other.counts[n];
    totals[n] += other.totals[n];
  }
  return *this;
}

std::string BleuScore::format() const {
  std::string precision_text;
  for (size_t n = 0; n < precisions.size(); ++n) {
    if (n > 0) precision_text += '/';
    precision_text += detail::fixed(precisions[n], 1);
  }
  const double ratio = ref_len != 0 ? static_cast<double>(sys_len) / static_cast<double>(ref_len) : 0.0;
  return fmt::format("BLEU = {} {} (BP = {} ratio = {} hyp_len = {} ref_len = {})", detail::fixed(score, 2),
                     precision_text, detail::fixed(bp, 3), detail::fixed(ratio, 3), sys_len, ref_len);
}

BleuScore bleu_from_stats(BleuStats stats, const BleuOptions& options, int num_refs) {
  options.validate();
  const int order = options.max_ngram_order;
  if (static_cast<int>(stats.counts.size()) != order || static_cast<int>(stats.totals.size()) != order) {
    throw DataError(
        fmt::format("bleu_from_stats: statistics of {} orders for max_ngram_order {}", stats.counts.size(), order));
  }
  const Smoothing method = parse_smoothing(options.smooth_method);
  const double smooth_value = smooth_value_of(options, method);
  BleuScore out;
  out.signature = signature_of(options, num_refs);
  out.sys_len = stats.sys_len;
  out.ref_len = stats.ref_len;
  // BLEU.compute_bleu, step by step.
  out.bp = 1.0;
  if (stats.sys_len < stats.ref_len) {
    out.bp = stats.sys_len > 0 ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len))
                               : 0.0;
  }
  out.precisions.assign(order, 0.0);
  const bool any_match = std::any_of(stats.counts.begin(), stats.counts.end(), [](int64_t c) { return c != 0; });
  if (any_match) {
    double smooth_mteval = 1.0;
    int eff_order = order;
    for (int n = 1; n <= order; ++n) {
      int64_t& correct = stats.counts[n - 1];
      int64_t& total = stats.totals[n - 1];
      if (method == Smoothing::kAddK && n > 1) {
        correct += static_cast<int64_t>(smooth_value);
        total += static_cast<int64_t>(smooth_value);
      }
      if (total == 0) break;
      if (options.effective_order) eff_order = n;
      double& precision = out.precisions[n - 1];
      if (correct == 0) {
        if (method == Smoothing::kExp) {
          smooth_mteval *= 2;
          precision = 100.0 / (smooth_mteval * static_cast<double>(total));
        } else if (method == Smoothing::kFloor) {
          precision = 100.0 * smooth_value / static_cast<double>(total);
        }
      } else {
        precision = 100.0 * static_cast<double>(correct) / static_cast<double>(total);
      }
    }
    double log_sum = 0.0;  // Python's sum(): left to right
    for (int n = 0; n < eff_order; ++n) log_sum += my_log(out.precisions[n]);
    out.score = out.bp * std::exp(log_sum / eff_order);
  } else {
    out.score = 0.0;  // no match at any order (sacrebleu #141)
  }
  out.counts = std::move(stats.counts);
  out.totals = std::move(stats.totals);
  return out;
}

std::vector<BleuStats> bleu_segment_stats(const std::vector<std::string>& hyps,
                                          const std::vector<std::vector<std::string>>& refs,
                                          const BleuOptions& options) {
  options.validate();
  detail::check_corpus(hyps, refs, "bleu_segment_stats");
  SegmentCounter counter(options);
  std::vector<BleuStats> out;
  out.reserve(hyps.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    out.push_back(zero_stats(options.max_ngram_order));
    counter.add(hyps[i], refs[i], out.back());
  }
  return out;
}

namespace {

BleuScore score_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs,
                       const BleuOptions& options, std::string_view caller) {
  options.validate();
  const int num_refs = detail::check_corpus(hyps, refs, caller);
  SegmentCounter counter(options);
  BleuStats sum = zero_stats(options.max_ngram_order);
  for (size_t i = 0; i < hyps.size(); ++i) counter.add(hyps[i], refs[i], sum);
  return bleu_from_stats(std::move(sum), options, num_refs);
}

}  // namespace

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& options) {
  return score_corpus(hyps, refs, options, "corpus_bleu");
}

BleuOptions sentence_bleu_options() {
  BleuOptions options;
  options.effective_order = true;
  return options;
}

BleuScore sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs, const BleuOptions& options) {
  return score_corpus({&hyp, 1}, {&refs, 1}, options, "sentence_bleu");
}

}  // namespace troupe::metrics
