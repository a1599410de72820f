#include "metrics/squad.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::metrics {
namespace {

// Python re's \w on str patterns: alphanumeric (str.isalnum) or underscore.
bool is_word(char32_t c) { return c == U'_' || is_alnum(c); }

bool article_at(const std::u32string& s, size_t i, size_t len) {
  static const std::u32string kArticles[] = {U"a", U"an", U"the"};
  for (const auto& a : kArticles) {
    if (a.size() == len && s.compare(i, len, a) == 0) return true;
  }
  return false;
}

}  // namespace

std::string squad_normalize(std::string_view answer) {
  // lower -> remove_punc -> remove_articles -> white_space_fix, in the script's order.
  std::u32string text = lower(decode_utf8(answer, "answer"));
  std::u32string no_punct;
  no_punct.reserve(text.size());
  for (char32_t c : text) {
    if (!is_ascii_punctuation(c)) no_punct.push_back(c);
  }
  // re.sub(r'\b(a|an|the)\b', ' ', text): the leftmost alternative that matches at a word boundary and ends at one
  // ("a" before "an": "an" is removed only where "a" does not end at a boundary, which is the same thing).
  std::u32string out;
  out.reserve(no_punct.size());
  const size_t n = no_punct.size();
  size_t i = 0;
  while (i < n) {
    const bool boundary_before = i == 0 || !is_word(no_punct[i - 1]);
    bool replaced = false;
    if (boundary_before && is_word(no_punct[i])) {
      for (size_t len : {size_t{1}, size_t{2}, size_t{3}}) {
        if (i + len > n || !article_at(no_punct, i, len)) continue;
        const bool boundary_after = i + len == n || !is_word(no_punct[i + len]);
        if (boundary_after) {
          out.push_back(U' ');
          i += len;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(no_punct[i++]);
  }
  std::string joined;
  for (const auto& w : split_whitespace(std::u32string_view(out))) {
    if (!joined.empty()) joined.push_back(' ');
    joined += encode_utf8(w);
  }
  return joined;
}

double squad_exact(std::string_view prediction, std::string_view gold) {
  return squad_normalize(prediction) == squad_normalize(gold) ? 1.0 : 0.0;
}

double squad_f1(std::string_view prediction, std::string_view gold) {
  const auto pred_tokens = split_whitespace(squad_normalize(prediction));
  const auto gold_tokens = split_whitespace(squad_normalize(gold));
  std::unordered_map<std::string, int64_t> gold_counts;
  for (const auto& t : gold_tokens) ++gold_counts[t];
  int64_t same = 0;
  for (const auto& t : pred_tokens) {
    auto it = gold_counts.find(t);
    if (it != gold_counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = 1.0 * static_cast<double>(same) / static_cast<double>(pred_tokens.size());
  const double recall = 1.0 * static_cast<double>(same) / static_cast<double>(gold_tokens.size());
  return (2 * precision * recall) / (precision + recall);
}

SquadScores squad_scores(const std::vector<std::string>& predictions,
                         const std::vector<std::vector<std::string>>& golds) {
  if (predictions.size() != golds.size()) {
    throw DataError(
        fmt::format("SQuAD scores: {} predictions but {} gold answer lists", predictions.size(), golds.size()));
  }
  SquadScores out;
  double em = 0, f1 = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (golds[i].empty()) throw DataError(fmt::format("SQuAD scores: prediction {} has no gold answer", i + 1));
    double best_em = 0, best_f1 = 0;
    for (const auto& g : golds[i]) {
      best_em = std::max(best_em, squad_exact(predictions[i], g));
      best_f1 = std::max(best_f1, squad_f1(predictions[i], g));
    }
    em += best_em;
    f1 += best_f1;
  }
  out.count = static_cast<int64_t>(predictions.size());
  if (out.count > 0) {
    out.exact_match = 100.0 * em / static_cast<double>(out.count);
    out.f1 = 100.0 * f1 / static_cast<double>(out.count);
  }
  return out;
}

}  // namespace troupe::metrics
