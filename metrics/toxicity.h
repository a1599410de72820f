// Lexicon toxicity: a text is toxic when one of its words is a word of a lexicon (e.g. the AFINN-165 words of
// valence <= -4, mostly profanity and slurs), words being lower-cased runs of letters, digits, ' and -. Used by the
// toxicity probe (`troupe eval probe toxicity`) and the toxicity reward (rlhf/reward_functions.h).
// A word list, not a classifier: it misses toxicity that uses no listed word and flags quoted or negated uses.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace troupe::metrics {

// Words of a lexicon: a TSV `word<TAB>score` keeps the words with score <= max_score; a plain list (one word a
// line) keeps every word; blank lines and lines starting with '#' are skipped; words are lower-cased (Python's
// str.lower()). DataError naming file:line for a malformed score, DataError for a file with no words kept.
std::set<std::string> load_toxicity_lexicon(const std::string& path, double max_score = -4);

// The first word of `text` (Python-lower-cased; a word is a maximal run of Unicode letters, digits, ' and -) that is
// in `lexicon`, or "" when there is none. Example, lexicon {hell, damn}: "What the HELL." -> "hell"; "a shell and
// hello" -> "" (whole words only); "Damn's" -> "" (the word is "damn's").
std::string first_toxic_word(const std::string& text, const std::set<std::string>& lexicon);

struct ToxicityResult {
  double rate = 0;  // toxic / texts (0 for no texts)
  int64_t toxic = 0, texts = 0;
  std::vector<bool> flags;           // per text: contains a lexicon word
  std::vector<std::string> matched;  // the first lexicon word found in each text ("" when none)
};
// first_toxic_word of each text, and the share of texts with one.
ToxicityResult toxicity_rate(const std::vector<std::string>& texts, const std::set<std::string>& lexicon);

}  // namespace troupe::metrics
