#include "metrics/ter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <tuple>

#include "core/errors.h"
#include "metrics/ngram_ids.h"
#include "metrics/sacrebleu_tokenizers.h"
#include "metrics/unicode.h"

namespace troupe::metrics {
namespace {

// lib_ter's limits.
constexpr int64_t kInfinity = 10000000000000000;  // int(1e16): a cell outside the beam
constexpr int kMaxShiftSize = 10;
constexpr int kMaxShiftDist = 50;
constexpr int kBeamWidth = 25;
constexpr int kMaxShiftCandidates = 1000;

// lib_ter.BeamEditDistance for hypotheses of one length against one reference: the Levenshtein matrix (hypothesis
// words are rows) computed only within a beam around the diagonal scaled by the length ratio. Its trie cache is not
// needed: a row depends only on the hypothesis words above it, so the shift search reuses the rows of the unshifted
// hypothesis for the prefix a shift leaves alone (the same numbers the cache would return).
class BeamEditDistance {
 public:
  BeamEditDistance(const std::vector<uint32_t>& ref, size_t hyp_len)
      : ref_(ref), n_ref_(ref.size()), n_hyp_(hyp_len), width_(n_ref_ + 1) {
    ratio_ = n_hyp_ > 0 ? static_cast<double>(n_ref_) / static_cast<double>(n_hyp_) : 1.0;
    beam_ = kBeamWidth < ratio_ / 2 ? static_cast<int64_t>(std::ceil(ratio_ / 2 + kBeamWidth)) : kBeamWidth;
    cost_.assign((n_hyp_ + 1) * width_, kInfinity);
    op_.assign((n_hyp_ + 1) * width_, 'x');
    for (size_t j = 0; j < width_; ++j) {  // the first row inserts every reference word
      cost_[j] = static_cast<int64_t>(j);
      op_[j] = 'i';
    }
    a_.resize(width_);
    b_.resize(width_);
  }

  // The edit distance of `hyp` and the trace of operations turning it into the reference (' ' keep, 's' substitute,
  // 'd' delete a hypothesis word, 'i' insert a reference word). Keeps the matrix for distance_from().
  int64_t full(const std::vector<uint32_t>& hyp, std::string& trace) {
    for (size_t i = 1; i <= n_hyp_; ++i) {
      row<true>(&cost_[(i - 1) * width_], &cost_[i * width_], &op_[i * width_], i, hyp[i - 1]);
    }
    trace.clear();
    size_t i = n_hyp_, j = n_ref_;
    while (i > 0 || j > 0) {
      const char op = op_[i * width_ + j];
      trace.push_back(op);
      if (op == 's' || op == ' ') {
        --i;
        --j;
      } else if (op == 'i') {
        --j;
      } else if (op == 'd') {
        --i;
      } else {
        throw Error("TER: the edit-distance trace reached a cell outside the beam");
      }
    }
    std::reverse(trace.begin(), trace.end());
    return cost_[n_hyp_ * width_ + n_ref_];
  }

  // The edit distance of `hyp`, whose first `prefix` words are those of the last full() hypothesis.
  int64_t distance_from(const std::vector<uint32_t>& hyp, size_t prefix) {
    const int64_t* prev = &cost_[prefix * width_];
    int64_t* cur = a_.data();
    for (size_t i = prefix + 1; i <= n_hyp_; ++i) {
      row<false>(prev, cur, nullptr, i, hyp[i - 1]);
      prev = cur;
      cur = cur == a_.data() ? b_.data() : a_.data();
    }
    return prev[n_ref_];
  }

 private:
  // Row i of the matrix from row i - 1, as BeamEditDistance._edit_distance: cells outside the beam stay infinite; on
  // a tie keep/substitute beats delete beats insert.
  template <bool kOps>
  void row(const int64_t* prev, int64_t* cur, char* ops, size_t i, uint32_t word) const {
    std::fill(cur, cur + width_, kInfinity);
    if constexpr (kOps) std::fill(ops, ops + width_, 'x');
    const auto diagonal = static_cast<int64_t>(std::floor(static_cast<double>(i) * ratio_));
    const int64_t min_j = std::max<int64_t>(0, diagonal - beam_);
    int64_t max_j = std::min<int64_t>(static_cast<int64_t>(width_), diagonal + beam_);
    if (i == n_hyp_) max_j = static_cast<int64_t>(width_);
    for (int64_t j = min_j; j < max_j; ++j) {
      if (j == 0) {
        cur[0] = prev[0] + 1;
        if constexpr (kOps) ops[0] = 'd';
        continue;
      }
      const bool same = word == ref_[j - 1];
      const int64_t candidates[3] = {prev[j - 1] + (same ? 0 : 1), prev[j] + 1, cur[j - 1] + 1};
      const char names[3] = {same ? ' ' : 's', 'd', 'i'};
      for (int k = 0; k < 3; ++k) {
        if (cur[j] > candidates[k]) {
          cur[j] = candidates[k];
          if constexpr (kOps) ops[j] = names[k];
        }
      }
    }
  }

  const std::vector<uint32_t>& ref_;
  size_t n_ref_, n_hyp_, width_;
  double ratio_ = 1.0;
  int64_t beam_ = kBeamWidth;
  std::vector<int64_t> cost_;   // (n_hyp + 1, n_ref + 1) of the last full() hypothesis
  std::vector<char> op_;        // (n_hyp + 1, n_ref + 1)
  std::vector<int64_t> a_, b_;  // (n_ref + 1) rolling rows of distance_from
};

// Python's words[a:b] appended to `out` (clamped like a slice).
void append_slice(std::vector<uint32_t>& out, const std::vector<uint32_t>& words, size_t a, size_t b) {
  b = std::min(b, words.size());
  if (a < b)
    out.insert(out.end(), words.begin() + static_cast<std::ptrdiff_t>(a),
               words.begin() + static_cast<std::ptrdiff_t>(b));
}

// lib_ter._perform_shift: words[start:start+length] moved before position `target`.
void perform_shift(const std::vector<uint32_t>& words, size_t start, size_t length, size_t target,
                   std::vector<uint32_t>& out) {
  out.clear();
  if (target < start) {
    append_slice(out, words, 0, target);
    append_slice(out, words, start, start + length);
    append_slice(out, words, target, start);
    append_slice(out, words, start + length, words.size());
  } else if (target > start + length) {
    append_slice(out, words, 0, start);
    append_slice(out, words, start + length, target);
    append_slice(out, words, start, start + length);
    append_slice(out, words, target, words.size());
  } else {
    append_slice(out, words, 0, start);
    append_slice(out, words, start + length, length + target);
    append_slice(out, words, start, start + length);
    append_slice(out, words, length + target, words.size());
  }
}

// lib_ter.trace_to_alignment of the flipped trace (reference rewritten into hypothesis).
struct Alignment {
  std::vector<int64_t> align;    // (n_ref) hypothesis position of each reference word (-1: before the first)
  std::vector<int64_t> ref_err;  // (n_ref + 1) prefix sums of the reference error flags
  std::vector<int64_t> hyp_err;  // (n_hyp + 1) prefix sums of the hypothesis error flags
};

Alignment align_trace(const std::string& hyp_to_ref_trace) {
  Alignment out;
  out.ref_err.push_back(0);
  out.hyp_err.push_back(0);
  int64_t pos_hyp = -1;
  for (const char op : hyp_to_ref_trace) {
    // Flipped: deleting a hypothesis word is inserting it, inserting a reference word is deleting it.
    if (op == ' ' || op == 's') {
      const int err = op == 's' ? 1 : 0;
      ++pos_hyp;
      out.align.push_back(pos_hyp);
      out.hyp_err.push_back(out.hyp_err.back() + err);
      out.ref_err.push_back(out.ref_err.back() + err);
    } else if (op == 'd') {
      ++pos_hyp;
      out.hyp_err.push_back(out.hyp_err.back() + 1);
    } else {
      out.align.push_back(pos_hyp);
      out.ref_err.push_back(out.ref_err.back() + 1);
    }
  }
  return out;
}

// lib_ter._shift: the shift of a matching block that lowers the edit distance most (ties: longest block, earliest
// in the hypothesis, earliest target). Returns the gain (0 without a candidate) and sets `best_words`.
int64_t best_shift(const std::vector<uint32_t>& words_h, const std::vector<uint32_t>& words_r, BeamEditDistance& ed,
                   int& checked, std::vector<uint32_t>& best_words, std::vector<uint32_t>& shifted,
                   std::string& trace) {
  const int64_t pre_score = ed.full(words_h, trace);
  const Alignment al = align_trace(trace);
  const auto n_h = static_cast<int64_t>(words_h.size()), n_r = static_cast<int64_t>(words_r.size());
  bool found = false;
  std::tuple<int64_t, int64_t, int64_t, int64_t> best{};  // (gain, length, -start_h, -target)

  // One (start_h, start_r, length) from _find_shifted_pairs; returns true when the candidate budget is spent.
  const auto consider = [&](int64_t start_h, int64_t start_r, int64_t length) {
    if (al.hyp_err[start_h + length] - al.hyp_err[start_h] == 0) return false;
    if (al.ref_err[start_r + length] - al.ref_err[start_r] == 0) return false;
    if (start_h <= al.align[start_r] && al.align[start_r] < start_h + length) return false;
    int64_t prev_idx = -1;
    for (int64_t offset = -1; offset < length; ++offset) {
      int64_t idx;
      if (start_r + offset == -1) {
        idx = 0;
      } else if (start_r + offset < n_r) {
        idx = al.align[start_r + offset] + 1;  // sacreBLEU inserts before the index, Tercom after
      } else {
        break;
      }
      if (idx == prev_idx) continue;
      prev_idx = idx;
      perform_shift(words_h, start_h, length, idx, shifted);
      const int64_t gain = pre_score - ed.distance_from(shifted, std::min(start_h, idx));
      const auto candidate = std::make_tuple(gain, length, -start_h, -idx);
      ++checked;
      if (!found || candidate > best) {
        found = true;
        best = candidate;
        best_words = shifted;
      }
    }
    return checked >= kMaxShiftCandidates;
  };

  for (int64_t start_h = 0; start_h < n_h; ++start_h) {
    for (int64_t start_r = 0; start_r < n_r; ++start_r) {
      if (std::abs(start_r - start_h) > kMaxShiftDist) continue;
      int64_t length = 0;
      while (words_h[start_h + length] == words_r[start_r + length] && length < kMaxShiftSize) {
        ++length;
        if (consider(start_h, start_r, length)) return found ? std::get<0>(best) : 0;
        if (n_h == start_h + length || n_r == start_r + length) break;
      }
    }
  }
  return found ? std::get<0>(best) : 0;
}

// TER.get_signature().format().
std::string signature_of(const TerOptions& options, int num_refs) {
  const auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  return fmt::format("nrefs:{}|case:{}|tok:tercom|norm:{}|punct:{}|asian:{}|version:{}", num_refs,
                     options.case_sensitive ? "mixed" : "lc", yes_no(options.normalized), yes_no(!options.no_punct),
                     yes_no(options.asian_support), detail::kSacrebleuVersion);
}

bool in_asian_punct(char32_t c) {
  return c == 0x3001 || c == 0x3002 || (c >= 0x3008 && c <= 0x3011) || (c >= 0x3014 && c <= 0x301F) ||
         (c >= 0xFF61 && c <= 0xFF65) || c == 0x30FB;
}
bool in_full_width_punct(char32_t c) {
  switch (c) {
    case 0xFF0E:
    case 0xFF0C:
    case 0xFF1F:
    case 0xFF1A:
    case 0xFF1B:
    case 0xFF01:
    case 0xFF02:
    case 0xFF08:
    case 0xFF09: return true;
    default: return false;
  }
}
// The code points _normalize_asian pads with spaces. Its Hiragana/Katakana rules are anchored at the start of the
// text, which normalisation always begins with a space: they never match.
bool in_asian_split(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x31C0 && c <= 0x31EF) ||
         (c >= 0x2E80 && c <= 0x2EFF) || (c >= 0x3300 && c <= 0x33FF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0x3200 && c <= 0x3F22) || in_asian_punct(c) || in_full_width_punct(c);
}

// Keeps or pads or drops each code point of `text` (rules that only add or remove whitespace around single code
// points compose into one pass, as the final ' '.join(text.split()) ignores how much whitespace there is).
template <class Pad, class Drop>
void map_code_points(std::string& text, Pad pad, Drop drop, std::string& scratch) {
  scratch.clear();
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const char32_t c = detail::next_code_point(text, i);
    if (drop(c)) continue;
    if (pad(c)) scratch.push_back(' ');
    scratch.append(text, start, i - start);
    if (pad(c)) scratch.push_back(' ');
  }
  text.swap(scratch);
}

// _normalize_general_and_western.
void normalize_western(std::string& text, std::string& scratch) {
  detail::replace_all(text, "\n-", "", scratch);
  detail::replace_all(text, "\n", " ", scratch);
  detail::replace_all(text, "&quot;", "\"", scratch);
  detail::replace_all(text, "&amp;", "&", scratch);
  detail::replace_all(text, "&lt;", "<", scratch);
  detail::replace_all(text, "&gt;", ">", scratch);
  scratch.clear();
  scratch.push_back(' ');
  scratch.append(text);
  scratch.push_back(' ');
  detail::pad_13a_punctuation(scratch, text);
  detail::replace_all(text, "'s ", " 's ", scratch);
  // r"'s$" cannot match: the text ends with the space added above.
  detail::split_periods_commas_dashes(text, scratch);
}

bool is_tercom_punct(char32_t c) {
  return c == '.' || c == ',' || c == '?' || c == ':' || c == ';' || c == '!' || c == '"' || c == '(' || c == ')';
}

// TercomTokenizer.__call__ before its ' '.join(sent.split()).
std::string tercom_unsplit(std::string_view line, const TerOptions& options) {
  std::string text = options.case_sensitive ? std::string(line) : lower(line);
  std::string scratch;
  const auto never = [](char32_t) { return false; };
  if (options.normalized) {
    normalize_western(text, scratch);
    if (options.asian_support) map_code_points(text, in_asian_split, never, scratch);
  }
  if (options.no_punct) {
    const bool asian = options.asian_support;
    map_code_points(
        text, never,
        [asian](char32_t c) { return is_tercom_punct(c) || (asian && (in_asian_punct(c) || in_full_width_punct(c))); },
        scratch);
  }
  return text;
}

// The TER statistics of a corpus: summed best edits and summed average reference lengths (sacrebleu's order).
struct TerSums {
  int64_t edits = 0;
  double ref_length = 0.0;
};

TerScore score_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs,
                      const TerOptions& options, std::string_view caller) {
  const int num_refs = detail::check_corpus(hyps, refs, caller);
  detail::TokenIds ids;
  std::vector<std::string_view> pieces;
  std::vector<uint32_t> hyp_ids, ref_ids;
  bool inserted = false;
  // TER._preprocess_segment: the Tercom tokenizer on text.rstrip(). sacreBLEU applies it to a reference twice
  // (Metric._cache_references, then TER._extract_reference_info on the result), which matters where normalisation is
  // not idempotent ("it's\tx" only becomes "it 's x" the second time): so do we.
  const auto words_of = [&](const std::string& text, std::string& storage, std::vector<uint32_t>& out, int times) {
    storage = tercom_unsplit(detail::rstrip(text), options);
    for (int t = 1; t < times; ++t) storage = tercom_unsplit(detail::rstrip(detail::join_split(storage)), options);
    pieces.clear();
    detail::split_views(storage, pieces);
    out.clear();
    for (const std::string_view w : pieces) out.push_back(ids.insert(w, &inserted));
  };
  TerSums sums;
  std::string hyp_text;
  std::vector<std::string> ref_texts(num_refs);
  for (size_t i = 0; i < hyps.size(); ++i) {
    ids.clear();
    words_of(hyps[i], hyp_text, hyp_ids, 1);
    int64_t best_edits = kInfinity;
    int64_t ref_lengths = 0;
    for (int r = 0; r < num_refs; ++r) {
      words_of(refs[i][r], ref_texts[r], ref_ids, 2);
      best_edits = std::min(best_edits, translation_edits(hyp_ids, ref_ids));
      ref_lengths += static_cast<int64_t>(ref_ids.size());
    }
    sums.edits += best_edits;
    sums.ref_length += static_cast<double>(ref_lengths) / static_cast<double>(num_refs);
  }
  TerScore out;
  out.num_edits = sums.edits;
  out.ref_length = sums.ref_length;
  double rate = 0.0;  // empty references and hypotheses
  if (sums.ref_length > 0) {
    rate = static_cast<double>(sums.edits) / sums.ref_length;
  } else if (sums.edits > 0) {
    rate = 1.0;  // empty references, non-empty hypothesis
  }
  out.score = 100 * rate;
  out.signature = signature_of(options, num_refs);
  return out;
}

}  // namespace

int64_t translation_edits(const std::vector<uint32_t>& hyp, const std::vector<uint32_t>& ref) {
  if (ref.empty()) return static_cast<int64_t>(hyp.size());
  BeamEditDistance ed(ref, hyp.size());
  std::vector<uint32_t> input = hyp, next, shifted;
  std::string trace;
  int checked = 0;
  int64_t shifts = 0;
  while (true) {
    // Shift until a shift stops lowering the edit distance; a shift found after the budget ran out is not taken.
    const int64_t gain = best_shift(input, ref, ed, checked, next, shifted, trace);
    if (checked >= kMaxShiftCandidates || gain <= 0) break;
    ++shifts;
    input.swap(next);
  }
  return shifts + ed.distance_from(input, 0);
}

std::string tokenize_tercom(std::string_view line, const TerOptions& options) {
  detail::check_utf8(line, "tokenize_tercom");
  if (line.empty()) return "";
  return detail::join_split(tercom_unsplit(line, options));
}

std::string TerScore::format() const { return fmt::format("TER = {}", detail::fixed(score, 2)); }

TerScore corpus_ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                    const TerOptions& options) {
  return score_corpus(hyps, refs, options, "corpus_ter");
}

TerScore sentence_ter(const std::string& hyp, const std::vector<std::string>& refs, const TerOptions& options) {
  return score_corpus({&hyp, 1}, {&refs, 1}, options, "sentence_ter");
}

}  // namespace troupe::metrics
