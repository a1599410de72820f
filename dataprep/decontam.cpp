// dataprep/decontam.h: the Janitor's normalisation and n-grams, and an exact n-gram index of evaluation texts.
// Not a streaming or sharded index: the evaluation sets are small (MBs) and kept in memory as strings.
#include "dataprep/decontam.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {

void DecontamConfig::validate() const {
  if (n < 1) throw ConfigError(fmt::format("decontamination: n must be >= 1 (got {})", n));
  if (min_matches < 1)
    throw ConfigError(fmt::format("decontamination: min_matches must be >= 1 (got {})", min_matches));
}

std::string janitor_normalize(std::string_view text) {
  metrics::decode_utf8(text);  // DataError for malformed UTF-8; ASCII bytes never occur inside a multi-byte sequence,
                               // so the byte-wise pass below is the code-point-wise str.translate
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80 && metrics::is_ascii_punctuation(c)) continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : ch;
  }
  return out;
}

namespace {

// The n-grams of `words`, joined by single spaces; f(ngram) for each, in order.
template <typename F>
void for_each_ngram(const std::vector<std::string>& words, int n, F&& f) {
  const auto k = static_cast<size_t>(n);
  std::string gram;
  for (size_t i = 0; i + k <= words.size(); ++i) {
    gram.clear();
    for (size_t j = i; j < i + k; ++j) {
      if (j > i) gram += ' ';
      gram += words[j];
    }
    f(gram);
  }
}

}  // namespace

std::vector<std::string> word_ngrams(std::string_view text, int n) {
  if (n < 1) throw ConfigError(fmt::format("word_ngrams: n must be >= 1 (got {})", n));
  std::vector<std::string> out;
  for_each_ngram(metrics::split_whitespace(text), n, [&](const std::string& g) { out.push_back(g); });
  return out;
}

DecontamIndex::DecontamIndex(DecontamConfig config) : config_(config) { config_.validate(); }

void DecontamIndex::add(const std::string& eval_id, std::string_view text) {
  const auto words = metrics::split_whitespace(janitor_normalize(text));
  if (words.size() < static_cast<size_t>(config_.n)) ++short_texts_;
  const auto id = static_cast<uint32_t>(eval_ids_.size());
  eval_ids_.push_back(eval_id);
  for_each_ngram(words, config_.n, [&](const std::string& g) {
    auto& ids = ngrams_[g];
    if (ids.empty() || ids.back() != id) ids.push_back(id);
  });
}

ContaminationReport DecontamIndex::check(std::string_view document) const {
  ContaminationReport report;
  std::unordered_set<std::string> seen;
  std::vector<uint32_t> ids;
  for_each_ngram(metrics::split_whitespace(janitor_normalize(document)), config_.n, [&](const std::string& g) {
    const auto it = ngrams_.find(g);
    if (it == ngrams_.end() || !seen.insert(g).second) return;
    report.matched.push_back(g);
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  });
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (auto id : ids) report.eval_ids.push_back(eval_ids_[id]);
  report.contaminated = report.matched.size() >= static_cast<size_t>(config_.min_matches);
  return report;
}

}  // namespace troupe::dataprep
