// The Gopher quality and repetition filters (dataprep/quality.h): datatrove 0.10.1's code, rule by rule, on code
// points. Not a streaming implementation: each document is decoded and tokenised whole (a copy per document).
#include "dataprep/quality.h"

#include <fmt/format.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {
namespace {

using metrics::decode_utf8;
using metrics::encode_utf8;
using metrics::is_space;

bool contains(std::u32string_view set, char32_t c) { return set.find(c) != std::u32string_view::npos; }

// datatrove.utils.text.PUNCTUATION: its characters plus the C0 controls but tab and newline, DEL and the C1 controls.
bool is_datatrove_punctuation(char32_t c) {
  static const std::u32string kChars =
      U"!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»";
  return contains(kChars, c) || (c < 32 && c != 9 && c != 10) || (c >= 127 && c < 160);
}

bool is_alpha(char32_t c) { return u_isalpha(static_cast<UChar32>(c)); }
bool is_alnum(char32_t c) { return metrics::is_alnum(c); }

// Python's str.count(sub): non-overlapping occurrences.
size_t count(std::u32string_view text, std::u32string_view sub) {
  size_t n = 0;
  for (size_t pos = text.find(sub); pos != std::u32string_view::npos; pos = text.find(sub, pos + sub.size())) ++n;
  return n;
}

// Python's str.splitlines() (no keepends): \r\n counts once, no empty piece after a final line break.
std::vector<std::u32string_view> splitlines(std::u32string_view text) {
  static const std::u32string kBreaks = U"\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029";
  std::vector<std::u32string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!contains(kBreaks, text[i])) continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

std::u32string_view lstrip(std::u32string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}
std::u32string_view rstrip(std::u32string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits `piece` (no whitespace) into tokens; see split_words in the header. Every token is a substring of the piece,
// so the words are views into the document (no copies).
void split_piece(std::u32string_view piece, std::vector<std::u32string_view>& out) {
  static const std::u32string kPrefix = U"([{\"'“‘«#$£€§*–—";
  static const std::u32string kSuffix = U",.;:!?)]}\"'”’»%*…";
  while (piece.size() > 1 && contains(kPrefix, piece.front())) {
    out.push_back(piece.substr(0, 1));
    piece.remove_prefix(1);
  }
  std::vector<std::u32string_view> suffixes;  // in reverse order
  while (piece.size() > 1) {
    size_t dots = 0;
    while (dots < piece.size() && piece[piece.size() - 1 - dots] == U'.') ++dots;
    if (dots >= 2 && dots < piece.size()) {
      suffixes.push_back(piece.substr(piece.size() - dots));
      piece.remove_suffix(dots);
    } else if (contains(kSuffix, piece.back()) &&
               (piece.back() != U'.' ||
                (is_alnum(piece[piece.size() - 2]) && !(piece.size() == 2 && is_alpha(piece[0]))) ||
                contains(U")]}\"'”’%", piece[piece.size() - 2]))) {
      suffixes.push_back(piece.substr(piece.size() - 1));
      piece.remove_suffix(1);
    } else {
      break;
    }
  }
  // infix: a run of hyphens with a letter or digit on both sides
  size_t start = 0;
  for (size_t i = 1; i < piece.size(); ++i) {
    if (piece[i] != U'-' || !is_alnum(piece[i - 1])) continue;
    size_t j = i;
    while (j < piece.size() && piece[j] == U'-') ++j;
    if (j == piece.size() || !is_alnum(piece[j])) continue;
    out.push_back(piece.substr(start, i - start));
    out.push_back(piece.substr(i, j - i));
    start = j;
    i = j;
  }
  if (start < piece.size()) out.push_back(piece.substr(start));
  out.insert(out.end(), suffixes.rbegin(), suffixes.rend());
}

// The words of `text` as views into it (which must outlive them).
std::vector<std::u32string_view> split_words32(std::u32string_view text) {
  std::vector<std::u32string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) split_piece(text.substr(start, i - start), words);
  }
  return words;
}

FilterResult drop(std::string reason) { return {false, std::move(reason)}; }

// datatrove's find_duplicates: how many elements equal an earlier one, and their total length.
std::pair<size_t, size_t> find_duplicates(const std::vector<std::u32string_view>& items) {
  std::unordered_set<std::u32string_view> seen;
  seen.reserve(items.size());
  size_t elements = 0, chars = 0;
  for (const auto& item : items) {
    if (!seen.insert(item).second) {
      ++elements;
      chars += item.size();
    }
  }
  return {elements, chars};
}

// Python's re.split(pattern, text) for "\n{min,}": the pieces between runs of at least `min` newlines (views).
std::vector<std::u32string_view> split_newline_runs(std::u32string_view text, size_t min) {
  std::vector<std::u32string_view> pieces;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    while (j < text.size() && text[j] == U'\n') ++j;
    if (j - i >= min) {
      pieces.push_back(text.substr(start, i - start));
      start = j;
    }
    i = j > i ? j : i + 1;
  }
  pieces.push_back(text.substr(start));
  return pieces;
}

// A document's words joined (by one space, or by nothing) with a polynomial prefix hash of the joined text, so that
// any run of consecutive words is a substring hashed in O(1) and compared without being built: the n-gram rules
// cost one pass over the words per n instead of a string per n-gram. The hash only picks buckets; equality is
// always the joined text's.
class JoinedWords {
 public:
  JoinedWords(const std::vector<std::u32string_view>& words, bool spaced) {
    start_.reserve(words.size() + 1);
    for (const auto& w : words) {
      if (spaced && !start_.empty()) text_ += U' ';
      start_.push_back(text_.size());
      text_ += w;
    }
    start_.push_back(text_.size() + (spaced ? 1 : 0));  // as if followed by a separator
    spaced_ = spaced;
    prefix_.resize(text_.size() + 1);
    power_.resize(text_.size() + 1);
    power_[0] = 1;
    for (size_t i = 0; i < text_.size(); ++i) {
      prefix_[i + 1] = prefix_[i] * kBase + text_[i] + 1;
      power_[i + 1] = power_[i] * kBase;
    }
  }
  struct Run {
    std::u32string_view text;
    uint64_t hash;
    bool operator==(const Run& o) const { return text == o.text; }
  };
  struct RunHash {
    size_t operator()(const Run& r) const { return r.hash; }
  };
  // Words [from, from + n) joined.
  Run run(size_t from, size_t n) const {
    const size_t b = start_[from], e = start_[from + n] - (spaced_ ? 1 : 0);
    const uint64_t h = prefix_[e] - prefix_[b] * power_[e - b];  // mod 2^64
    return {std::u32string_view(text_).substr(b, e - b), (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull};
  }

 private:
  static constexpr uint64_t kBase = 0x100000001B3ull;
  std::u32string text_;
  std::vector<size_t> start_;  // (words + 1) where each word starts in text_
  std::vector<uint64_t> prefix_, power_;
  bool spaced_ = false;
};

// datatrove's find_top_duplicate over get_n_grams: the most frequent space-joined n-gram's length times its count
// (Counter.most_common(1): among equal counts, the n-gram seen first). 0 when there are fewer than n words.
size_t top_ngram_chars(const JoinedWords& joined, size_t words, size_t n) {
  if (words < n) return 0;
  std::unordered_map<JoinedWords::Run, std::pair<size_t, size_t>, JoinedWords::RunHash> counts;  // (count, first)
  counts.reserve(words);
  for (size_t i = 0; i + n <= words; ++i) {
    auto [it, fresh] = counts.try_emplace(joined.run(i, n), 0, i);
    ++it->second.first;
  }
  const auto best = std::min_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
    return a.second.first != b.second.first ? a.second.first > b.second.first : a.second.second < b.second.second;
  });
  return best->first.text.size() * best->second.first;
}

// datatrove's find_all_duplicate: characters of n-grams (joined without spaces) equal to an earlier one; the scan
// jumps n words past each repeat.
size_t duplicate_ngram_chars(const JoinedWords& joined, size_t words, size_t n) {
  std::unordered_set<JoinedWords::Run, JoinedWords::RunHash> seen;
  seen.reserve(words);
  size_t chars = 0;
  for (size_t i = 0; i + n <= words;) {
    const JoinedWords::Run gram = joined.run(i, n);
    if (seen.count(gram)) {
      chars += gram.text.size();
      i += n;
    } else {
      seen.insert(gram);
      ++i;
    }
  }
  return chars;
}

void check(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

}  // namespace

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  const std::u32string decoded = decode_utf8(text);
  for (const auto& w : split_words32(decoded)) words.push_back(encode_utf8(w));
  return words;
}

void GopherQualityConfig::validate() const {
  for (double v : {min_doc_words, max_doc_words, min_avg_word_length, max_avg_word_length, max_symbol_word_ratio,
                   max_bullet_lines_ratio, max_ellipsis_lines_ratio, max_non_alpha_words_ratio, min_stop_words}) {
    check(v >= 0, fmt::format("gopher quality: thresholds must be >= 0 (got {})", v));
  }
  check(!max_doc_words || min_doc_words <= max_doc_words, "gopher quality: min_doc_words above max_doc_words");
  check(!max_avg_word_length || min_avg_word_length <= max_avg_word_length,
        "gopher quality: min_avg_word_length above max_avg_word_length");
}

FilterResult gopher_quality(std::string_view utf8, const GopherQualityConfig& c) {
  const std::u32string text = decode_utf8(utf8, "document");
  const auto words = split_words32(text);
  const double n_words = static_cast<double>(words.size());
  size_t non_symbol = 0, non_symbol_chars = 0;
  for (const auto& w : words) {
    if (std::any_of(w.begin(), w.end(), [](char32_t ch) { return !is_datatrove_punctuation(ch); })) {
      ++non_symbol;
      non_symbol_chars += w.size();
    }
  }
  if (c.min_doc_words && non_symbol < c.min_doc_words) return drop("gopher_short_doc");
  if (c.max_doc_words && non_symbol > c.max_doc_words) return drop("gopher_long_doc");
  // np.mean of an empty list is nan, and nan compares false: no rule fires
  const double avg = non_symbol ? static_cast<double>(non_symbol_chars) / static_cast<double>(non_symbol) : NAN;
  if (c.min_avg_word_length && avg < c.min_avg_word_length) return drop("gopher_below_avg_threshold");
  if (c.max_avg_word_length && avg > c.max_avg_word_length) return drop("gopher_above_avg_threshold");
  if (c.max_symbol_word_ratio && count(text, U"#") / n_words > c.max_symbol_word_ratio) {
    return drop("gopher_too_many_hashes");
  }
  if (c.max_symbol_word_ratio && (count(text, U"...") + count(text, U"…")) / n_words > c.max_symbol_word_ratio) {
    return drop("gopher_too_many_ellipsis");
  }
  const auto lines = splitlines(text);
  const double n_lines = static_cast<double>(lines.size());
  if (c.max_bullet_lines_ratio) {
    const auto bullets = std::count_if(lines.begin(), lines.end(), [](std::u32string_view l) {
      l = lstrip(l);
      return !l.empty() && (l.front() == U'•' || l.front() == U'-');
    });
    if (bullets / n_lines > c.max_bullet_lines_ratio) return drop("gopher_too_many_bullets");
  }
  if (c.max_ellipsis_lines_ratio) {
    const auto ellipses = std::count_if(lines.begin(), lines.end(), [](std::u32string_view l) {
      l = rstrip(l);
      return l.ends_with(U"...") || l.ends_with(U"…");
    });
    if (ellipses / n_lines > c.max_ellipsis_lines_ratio) return drop("gopher_too_many_end_ellipsis");
  }
  if (c.max_non_alpha_words_ratio) {
    const auto alpha = std::count_if(words.begin(), words.end(),
                                     [](const auto& w) { return std::any_of(w.begin(), w.end(), is_alpha); });
    if (alpha / n_words < c.max_non_alpha_words_ratio) return drop("gopher_below_alpha_threshold");
  }
  if (c.min_stop_words) {
    std::set<std::u32string, std::less<>> stop;
    std::set<std::u32string_view> present;
    for (const auto& s : c.stop_words) stop.insert(decode_utf8(s, "stop word"));
    for (const auto& w : words) {
      if (stop.count(w)) present.insert(w);
    }
    if (present.size() < c.min_stop_words) return drop("gopher_enough_stop_words");
  }
  return {};
}

void GopherRepetitionConfig::validate() const {
  for (double v : {dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac}) {
    check(v >= 0 && v <= 1, fmt::format("gopher repetition: fractions must be in [0, 1] (got {})", v));
  }
  for (const auto& list : {top_n_grams, dup_n_grams}) {
    for (const auto& [n, frac] : list) {
      check(n >= 1, fmt::format("gopher repetition: n-gram size must be >= 1 (got {})", n));
      check(frac >= 0 && frac <= 1, fmt::format("gopher repetition: fractions must be in [0, 1] (got {})", frac));
    }
  }
}

FilterResult gopher_repetition(std::string_view utf8, const GopherRepetitionConfig& c) {
  const std::u32string text = decode_utf8(utf8, "document");
  if (text.empty()) return drop("empty");
  const double length = static_cast<double>(text.size());
  std::u32string_view stripped = lstrip(rstrip(text));
  const auto paragraphs = split_newline_runs(stripped, 2);
  auto [dup, dup_chars] = find_duplicates(paragraphs);
  if (c.dup_para_frac && dup / static_cast<double>(paragraphs.size()) > c.dup_para_frac) return drop("dup_para_frac");
  if (c.dup_para_char_frac && dup_chars / length > c.dup_para_char_frac) return drop("dup_para_char_frac");
  const auto lines = split_newline_runs(text, 1);
  std::tie(dup, dup_chars) = find_duplicates(lines);
  if (c.dup_line_frac && dup / static_cast<double>(lines.size()) > c.dup_line_frac) return drop("dup_line_frac");
  if (c.dup_line_char_frac && dup_chars / length > c.dup_line_char_frac) return drop("dup_line_char_frac");
  const auto words = split_words32(text);
  if (!c.top_n_grams.empty()) {
    const JoinedWords spaced(words, true);
    for (const auto& [n, frac] : c.top_n_grams) {
      if (top_ngram_chars(spaced, words.size(), n) / length > frac) return drop(fmt::format("top_{}_gram", n));
    }
  }
  if (!c.dup_n_grams.empty()) {
    const JoinedWords unspaced(words, false);
    for (const auto& [n, frac] : c.dup_n_grams) {
      if (duplicate_ngram_chars(unspaced, words.size(), n) / length > frac) {
        return drop(fmt::format("duplicated_{}_n_grams", n));
      }
    }
  }
  return {};
}

}  // namespace troupe::dataprep
