// METEOR, stage by stage as nltk/translate/meteor_score.py (NLTK 3.10) runs it: _match_enums (exact), then
// _enum_stem_match (on the Porter stems of the words left), then _enum_wordnetsyn_match (on those stems: NLTK hands
// the stemmed leftovers on), then _count_chunks and single_meteor_score's formula. Words are string_views into
// per-call token and stem storage; the reference words of a stage are sorted once so that each lookup is a binary
// search rather than a scan (NLTK indexes them in a dict for the same reason).
#include "metrics/meteor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "core/errors.h"
#include "metrics/porter_stemmer.h"
#include "metrics/unicode.h"
#include "metrics/wordnet.h"

namespace troupe::metrics {

namespace {

// A word still unmatched: its position in the sentence and its current text (the token, later its stem).
struct Word {
  int index;
  std::string_view text;
};
using Match = std::pair<int, int>;  // (hypothesis position, reference position)

// The reference words of one stage grouped by text; take(group) hands out the group's highest free position
// (NLTK's ref_positions[word].pop()).
class RefGroups {
 public:
  explicit RefGroups(const std::vector<Word>& ref) : ref_(ref), order_(ref.size()), end_(ref.size()) {
    for (size_t k = 0; k < ref.size(); ++k) order_[k] = static_cast<int>(k);
    std::sort(order_.begin(), order_.end(),
              [&](int a, int b) { return ref[a].text != ref[b].text ? ref[a].text < ref[b].text : a < b; });
    for (size_t k = 0; k < order_.size(); ++k) {
      if (k == 0 || ref[order_[k]].text != ref[order_[k - 1]].text) starts_.push_back(static_cast<int>(k));
    }
    for (size_t g = 0; g < starts_.size(); ++g)
      end_[g] = g + 1 < starts_.size() ? starts_[g + 1] : static_cast<int>(order_.size());
  }
  size_t size() const { return starts_.size(); }
  std::string_view text(size_t group) const { return ref_[order_[starts_[group]]].text; }
  // The group of `text`, or -1.
  int find(std::string_view text) const {
    const auto it = std::lower_bound(starts_.begin(), starts_.end(), text,
                                     [&](int start, std::string_view t) { return ref_[order_[start]].text < t; });
    return it != starts_.end() && ref_[order_[*it]].text == text ? static_cast<int>(it - starts_.begin()) : -1;
  }
  // The highest free position (index into the stage's reference list) of `group`, or -1 when all are taken.
  int top(int group) const { return end_[group] > starts_[group] ? order_[end_[group] - 1] : -1; }
  int take(int group) { return order_[--end_[group]]; }

 private:
  const std::vector<Word>& ref_;
  std::vector<int> order_;   // reference list indices sorted by (text, index)
  std::vector<int> starts_;  // first slot of each group in order_
  std::vector<int> end_;     // one past the last free slot of each group
};

// Drops the matched words from a stage's lists, keeping the order of the rest.
void keep_unmatched(std::vector<Word>& words, const std::vector<char>& matched) {
  size_t out = 0;
  for (size_t k = 0; k < words.size(); ++k)
    if (!matched[k]) words[out++] = words[k];
  words.resize(out);
}

// NLTK's _match_enums: from the hypothesis's last word to its first, each to the highest free reference word with
// the same text.
void match_exact(std::vector<Word>& hyp, std::vector<Word>& ref, std::vector<Match>& matches) {
  if (hyp.empty() || ref.empty()) return;
  RefGroups groups(ref);
  std::vector<char> hyp_matched(hyp.size(), 0), ref_matched(ref.size(), 0);
  for (size_t i = hyp.size(); i-- > 0;) {
    const int group = groups.find(hyp[i].text);
    if (group < 0 || groups.top(group) < 0) continue;
    const int j = groups.take(group);
    hyp_matched[i] = ref_matched[j] = 1;
    matches.emplace_back(hyp[i].index, ref[j].index);
  }
  keep_unmatched(hyp, hyp_matched);
  keep_unmatched(ref, ref_matched);
}

// NLTK's _enum_wordnetsyn_match: from the hypothesis's last word to its first, each to the highest free reference
// word that is the word itself or one of its WordNet synonyms.
void match_synonyms(std::vector<Word>& hyp, std::vector<Word>& ref, const WordNet& wordnet,
                    std::vector<Match>& matches) {
  if (hyp.empty() || ref.empty()) return;
  RefGroups groups(ref);
  std::vector<char> hyp_matched(hyp.size(), 0), ref_matched(ref.size(), 0);
  for (size_t i = hyp.size(); i-- > 0;) {
    const std::vector<std::string>& synonyms = wordnet.synonyms(hyp[i].text);
    int best_group = -1, best_j = -1;
    auto consider = [&](int group) {
      if (group >= 0 && groups.top(group) > best_j) best_j = groups.top(group), best_group = group;
    };
    consider(groups.find(hyp[i].text));
    if (synonyms.size() < groups.size()) {
      for (const std::string& synonym : synonyms) consider(groups.find(synonym));
    } else {
      for (size_t g = 0; g < groups.size(); ++g)
        if (std::binary_search(synonyms.begin(), synonyms.end(), groups.text(g))) consider(static_cast<int>(g));
    }
    if (best_group < 0) continue;
    const int j = groups.take(best_group);
    hyp_matched[i] = ref_matched[j] = 1;
    matches.emplace_back(hyp[i].index, ref[j].index);
  }
  keep_unmatched(hyp, hyp_matched);
  keep_unmatched(ref, ref_matched);
}

// NLTK's _count_chunks on matches sorted by hypothesis position: a new chunk wherever either side is not consecutive.
int count_chunks(const std::vector<Match>& matches) {
  int chunks = 1;
  for (size_t k = 0; k + 1 < matches.size(); ++k) {
    if (matches[k + 1].first != matches[k].first + 1 || matches[k + 1].second != matches[k].second + 1) ++chunks;
  }
  return chunks;
}

// NLTK's map(str.lower, text.split()); lower() rejects malformed UTF-8 (DataError).
std::vector<std::string> lowered_tokens(std::string_view text) {
  thread_local std::vector<std::string_view> views;
  detail::split_python_whitespace(text, views);
  std::vector<std::string> tokens;
  tokens.reserve(views.size());
  for (std::string_view view : views) tokens.push_back(lower(view));
  return tokens;
}

// A hypothesis's tokens and their Porter stems, stemmed on first need and kept across its references.
struct Hypothesis {
  std::vector<std::string> tokens;
  std::vector<std::string> stems;  // sized once: views into it stay valid
  std::vector<char> stemmed;

  explicit Hypothesis(std::string_view text) : tokens(lowered_tokens(text)) {
    stems.resize(tokens.size());
    stemmed.assign(tokens.size(), 0);
  }
  std::string_view stem(int index) {
    if (!stemmed[index]) stems[index] = porter_stem(tokens[index]), stemmed[index] = 1;
    return stems[index];
  }
};

// NLTK's single_meteor_score for one reference.
double single_meteor(Hypothesis& hyp, const std::vector<std::string>& ref_tokens, const MeteorOptions& options,
                     const WordNet& wordnet) {
  const size_t translation_length = hyp.tokens.size(), reference_length = ref_tokens.size();
  if (translation_length == 0 || reference_length == 0) return 0.0;  // NLTK's ZeroDivisionError
  std::vector<Word> hyp_left, ref_left;
  hyp_left.reserve(translation_length);
  ref_left.reserve(reference_length);
  for (size_t i = 0; i < translation_length; ++i) hyp_left.push_back({static_cast<int>(i), hyp.tokens[i]});
  for (size_t j = 0; j < reference_length; ++j) ref_left.push_back({static_cast<int>(j), ref_tokens[j]});

  std::vector<Match> matches;
  match_exact(hyp_left, ref_left, matches);
  std::vector<std::string> ref_stems(reference_length);  // sized once: views into it stay valid
  if (!hyp_left.empty() && !ref_left.empty()) {
    for (Word& w : hyp_left) w.text = hyp.stem(w.index);
    for (Word& w : ref_left) w.text = ref_stems[w.index] = porter_stem(ref_tokens[w.index]);
    match_exact(hyp_left, ref_left, matches);
    match_synonyms(hyp_left, ref_left, wordnet, matches);
  }
  std::sort(matches.begin(), matches.end());  // by hypothesis position (each appears once)

  const double matches_count = static_cast<double>(matches.size());
  const double precision = matches_count / static_cast<double>(translation_length);
  const double recall = matches_count / static_cast<double>(reference_length);
  const double denominator = options.alpha * precision + (1 - options.alpha) * recall;
  if (denominator == 0.0 || matches.empty()) return 0.0;  // NLTK's ZeroDivisionError
  const double fmean = (precision * recall) / denominator;
  const double frag_frac = static_cast<double>(count_chunks(matches)) / matches_count;
  const double penalty = options.gamma * std::pow(frag_frac, options.beta);
  return (1 - penalty) * fmean;
}

double meteor_with(const WordNet& wordnet, const std::vector<std::string>& refs, const std::string& hyp,
                   const MeteorOptions& options) {
  if (refs.empty()) throw DataError("meteor_score: no references for the hypothesis");
  Hypothesis hypothesis(hyp);
  double best = 0.0;
  for (size_t r = 0; r < refs.size(); ++r) {
    const double score = single_meteor(hypothesis, lowered_tokens(refs[r]), options, wordnet);
    if (r == 0 || score > best) best = score;  // Python's max(): the first of equal maxima
  }
  return best;
}

}  // namespace

double meteor_score(const std::vector<std::string>& refs, const std::string& hyp, const MeteorOptions& options) {
  return meteor_with(WordNet::shared(options.wordnet_dir), refs, hyp, options);
}

double corpus_meteor(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps,
                     const MeteorOptions& options) {
  if (refs.size() != hyps.size())
    throw DataError(fmt::format("corpus_meteor: {} hypotheses but {} reference lists", hyps.size(), refs.size()));
  if (hyps.empty()) throw DataError("corpus_meteor: no sentences");
  const WordNet& wordnet = WordNet::shared(options.wordnet_dir);
  double total = 0.0;
  for (size_t i = 0; i < hyps.size(); ++i) total += meteor_with(wordnet, refs[i], hyps[i], options);
  return total / static_cast<double>(hyps.size());
}

}  // namespace troupe::metrics
