// Implementation of metrics/toxicity.h.
#include "metrics/toxicity.h"

#include <fmt/format.h>

#include <fstream>
#include <string_view>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::metrics {

std::set<std::string> load_toxicity_lexicon(const std::string& path, double max_score) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("{}: cannot open the toxicity lexicon", path));
  std::set<std::string> words;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) {
      words.insert(lower(line));
      continue;
    }
    double score = 0;
    try {
      score = std::stod(line.substr(tab + 1));
    } catch (const std::exception&) {
      throw DataError(fmt::format("{}:{}: expected word<TAB>score, got '{}'", path, number, line));
    }
    if (score <= max_score) words.insert(lower(line.substr(0, tab)));
  }
  if (words.empty()) throw DataError(fmt::format("{}: no lexicon words (score <= {})", path, max_score));
  return words;
}

std::string first_toxic_word(const std::string& text, const std::set<std::string>& lexicon) {
  const std::u32string low = lower(decode_utf8(text, "text"));
  auto word_char = [](char32_t c) { return c == U'\'' || c == U'-' || is_alnum(c); };
  size_t i = 0;
  while (i < low.size()) {
    while (i < low.size() && !word_char(low[i])) ++i;
    const size_t start = i;
    while (i < low.size() && word_char(low[i])) ++i;
    if (i > start) {
      std::string w = encode_utf8(std::u32string_view(low).substr(start, i - start));
      if (lexicon.count(w)) return w;
    }
  }
  return "";
}

ToxicityResult toxicity_rate(const std::vector<std::string>& texts, const std::set<std::string>& lexicon) {
  ToxicityResult r;
  r.texts = static_cast<int64_t>(texts.size());
  for (const auto& text : texts) {
    std::string found = first_toxic_word(text, lexicon);
    r.flags.push_back(!found.empty());
    r.toxic += !found.empty();
    r.matched.push_back(std::move(found));
  }
  r.rate = texts.empty() ? 0.0 : static_cast<double>(r.toxic) / static_cast<double>(texts.size());
  return r;
}

}  // namespace troupe::metrics
