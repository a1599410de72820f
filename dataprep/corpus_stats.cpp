// dataprep/corpus_stats.h: lengths, vocabulary and gendered-word counts of a corpus in one pass.
// Not a tokenizer: words are Python str.split() pieces, lower-cased and stripped of ASCII punctuation.
#include "dataprep/corpus_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {

const std::vector<std::string> kMaleWords = {"he",      "him",      "his",       "himself",     "man",      "men",
                                             "boy",     "boys",     "father",    "fathers",     "son",      "sons",
                                             "brother", "brothers", "husband",   "husbands",    "king",     "kings",
                                             "mr",      "sir",      "gentleman", "gentlemen",   "male",     "males",
                                             "uncle",   "uncles",   "nephew",    "grandfather", "boyfriend"};
const std::vector<std::string> kFemaleWords = {
    "she",      "her",       "hers",   "herself", "woman",   "women", "girl",  "girls",  "mother",      "mothers",
    "daughter", "daughters", "sister", "sisters", "wife",    "wives", "queen", "queens", "mrs",         "ms",
    "madam",    "lady",      "ladies", "female",  "females", "aunt",  "aunts", "niece",  "grandmother", "girlfriend"};

int log2_bin(int64_t x) {
  if (x < 0) throw DataError(fmt::format("log2_bin: negative count {}", x));
  return std::min(static_cast<int>(std::bit_width(static_cast<uint64_t>(x))), kHistogramBins - 1);
}

std::vector<std::string> corpus_words(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& piece : metrics::split_whitespace(metrics::lower(text))) {
    size_t b = 0, e = piece.size();  // ASCII punctuation bytes never occur inside a multi-byte UTF-8 sequence
    while (b < e && metrics::is_ascii_punctuation(static_cast<unsigned char>(piece[b]))) ++b;
    while (e > b && metrics::is_ascii_punctuation(static_cast<unsigned char>(piece[e - 1]))) --e;
    if (b < e) out.push_back(piece.substr(b, e - b));
  }
  return out;
}

namespace {

void add_length(LengthStats& s, int64_t documents_before, int64_t x) {
  s.min = documents_before == 0 ? x : std::min(s.min, x);
  s.max = documents_before == 0 ? x : std::max(s.max, x);
  s.total += x;
  ++s.histogram[log2_bin(x)];
}

int64_t count_lines(std::string_view text) {
  const auto newlines = static_cast<int64_t>(std::count(text.begin(), text.end(), '\n'));
  return newlines + (!text.empty() && text.back() != '\n');
}

std::optional<double> ratio(int64_t num, int64_t den) {
  if (den == 0) return std::nullopt;
  return static_cast<double>(num) / static_cast<double>(den);
}

std::map<std::string, int64_t> lookup(const std::vector<std::string>& list,
                                      const std::unordered_map<std::string, int64_t>& vocab, int64_t& total) {
  std::map<std::string, int64_t> out;
  for (const auto& w : list) {
    const auto it = vocab.find(w);
    total += out[w] = it == vocab.end() ? 0 : it->second;
  }
  return out;
}

}  // namespace

CorpusStatsBuilder::CorpusStatsBuilder(int top_k) : top_k_(top_k) {
  if (top_k < 0) throw ConfigError(fmt::format("corpus stats: top_k must be >= 0 (got {})", top_k));
}

void CorpusStatsBuilder::add(std::string_view text) {
  const auto chars = static_cast<int64_t>(metrics::decode_utf8(text).size());
  const auto words = static_cast<int64_t>(metrics::split_whitespace(text).size());
  add_length(stats_.chars, stats_.documents, chars);
  add_length(stats_.words, stats_.documents, words);
  add_length(stats_.lines, stats_.documents, count_lines(text));
  ++stats_.documents;
  for (auto& w : corpus_words(text)) ++vocab_[std::move(w)];
}

CorpusStats CorpusStatsBuilder::finish() const {
  CorpusStats s = stats_;
  for (auto* l : {&s.chars, &s.words, &s.lines}) {
    l->mean = s.documents ? static_cast<double>(l->total) / static_cast<double>(s.documents) : 0;
  }
  s.vocab_size = static_cast<int64_t>(vocab_.size());
  for (const auto& [w, c] : vocab_) s.vocab_tokens += c;
  std::vector<std::pair<std::string, int64_t>> all(vocab_.begin(), vocab_.end());
  const auto k = std::min(all.size(), static_cast<size_t>(top_k_));
  std::partial_sort(
      all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
      [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  s.top_words.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
  s.gender.male = lookup(kMaleWords, vocab_, s.gender.male_total);
  s.gender.female = lookup(kFemaleWords, vocab_, s.gender.female_total);
  s.gender.he_she_ratio = ratio(s.gender.male["he"], s.gender.female["she"]);
  s.gender.male_female_ratio = ratio(s.gender.male_total, s.gender.female_total);
  return s;
}

namespace {

std::string format_length(const std::string& name, const LengthStats& l) {
  std::string out = fmt::format("{} total {} min {} max {} mean {:.3f}\n", name, l.total, l.min, l.max, l.mean);
  for (int i = 0; i < kHistogramBins; ++i) {
    if (!l.histogram[i]) continue;
    const int64_t lo = i == 0 ? 0 : int64_t{1} << (i - 1);
    const std::string hi = i == kHistogramBins - 1 ? "inf" : std::to_string(i == 0 ? 1 : int64_t{1} << i);
    out += fmt::format("{} [{}, {}): {}\n", name, lo, hi, l.histogram[i]);
  }
  return out;
}

std::string format_ratio(const std::optional<double>& r) { return r ? fmt::format("{:.4f}", *r) : "n/a"; }

}  // namespace

std::string format_corpus_stats(const CorpusStats& s) {
  std::string out = fmt::format("documents {}\n", s.documents);
  out += format_length("chars", s.chars) + format_length("words", s.words) + format_length("lines", s.lines);
  out += fmt::format("vocab_size {} vocab_tokens {}\n", s.vocab_size, s.vocab_tokens);
  for (const auto& [w, c] : s.top_words) out += fmt::format("top_word {} {}\n", w, c);
  for (const auto& [w, c] : s.gender.male)
    if (c) out += fmt::format("male_word {} {}\n", w, c);
  for (const auto& [w, c] : s.gender.female)
    if (c) out += fmt::format("female_word {} {}\n", w, c);
  out +=
      fmt::format("male_total {} female_total {} he_she_ratio {} male_female_ratio {}\n", s.gender.male_total,
                  s.gender.female_total, format_ratio(s.gender.he_she_ratio), format_ratio(s.gender.male_female_ratio));
  return out;
}

}  // namespace troupe::dataprep
