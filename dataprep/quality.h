// The Gopher document filters of Rae et al. 2021 (MassiveText, Table A1) exactly as datatrove 0.10.1 defines them
// (GopherQualityFilter, GopherRepetitionFilter), with its default thresholds and its reason names, checked against
// datatrove in tests/dataprep/quality_test.cpp. Not a language identifier and not a model-based quality score.
//
// Words come from split_words below, a subset of the tokenizer datatrove uses for English (spaCy's blank "en"):
// equal to it on words, numbers and the punctuation attached to them (see split_words); contractions ("don't"),
// abbreviations ("U.S."), units ("10km") and emoticons ("8)", "):") it splits differently, which moves the counts by a
// word or two.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::dataprep {

// A filter's decision: keep, or drop with the rule that dropped it (datatrove's reason string, e.g.
// "gopher_short_doc", "dup_line_frac", "top_2_gram"), so a pipeline can count documents per reason.
struct FilterResult {
  bool keep = true;
  std::string reason;  // "" when kept
};

// Whitespace (Python str.split) pieces, each cut into tokens as spaCy's English tokenizer does in these cases:
// leading ( [ { " ' “ ‘ « # $ £ € § * – — peeled off one by one; trailing , . ; : ! ? ) ] } " ' ” ’ » % * … and runs of
// 2+ dots peeled off from the end (a "." only after a letter, digit or closer, and a single letter keeps its dot:
// "A.", "@."; spaCy splits "+." and "=." too); a run of hyphens between letters or digits
// split out ("well-known" -> well - known). Example: "(#tag, ok...)" -> ( # tag , ok ... ). A "•" or "-" glued to
// a word stays on it, as in spaCy.
std::vector<std::string> split_words(std::string_view text);

// datatrove's GopherQualityFilter; a threshold of 0 disables its rule (datatrove tests each for truthiness).
struct GopherQualityConfig {
  double min_doc_words = 50;            // fewer non-symbol words: "gopher_short_doc"
  double max_doc_words = 100000;        // more non-symbol words: "gopher_long_doc"
  double min_avg_word_length = 3;       // mean non-symbol word length (code points) below: ..._below_avg_threshold
  double max_avg_word_length = 10;      // ... above: "gopher_above_avg_threshold"
  double max_symbol_word_ratio = 0.1;   // "#" per word, then ("..." + "…") per word, above: too_many_hashes/ellipsis
  double max_bullet_lines_ratio = 0.9;  // lines starting (after spaces) with "•" or "-", above: too_many_bullets
  double max_ellipsis_lines_ratio = 0.3;   // lines ending with "..." or "…", above: "gopher_too_many_end_ellipsis"
  double max_non_alpha_words_ratio = 0.8;  // words with a letter, fraction below: "gopher_below_alpha_threshold"
  double min_stop_words = 2;               // distinct stop words present, fewer: "gopher_enough_stop_words"
  std::vector<std::string> stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"};  // case-sensitive
  void validate() const;  // ConfigError for negative thresholds or min above max
};

// The rules in datatrove's order; the first that fails is the reason. `text` is UTF-8 (DataError if malformed).
FilterResult gopher_quality(std::string_view text, const GopherQualityConfig& config = {});

// datatrove's GopherRepetitionFilter. Fractions are of the text's length in code points (of the count of
// paragraphs or lines for dup_para_frac and dup_line_frac); a fraction of 0 disables those four rules, while an
// n-gram rule is disabled by leaving its n out of the list (datatrove tests those without a truthiness check).
struct GopherRepetitionConfig {
  double dup_para_frac = 0.3;       // paragraphs (split on 2+ newlines) equal to an earlier one: "dup_para_frac"
  double dup_para_char_frac = 0.2;  // their characters over the text's: "dup_para_char_frac"
  double dup_line_frac = 0.3;       // lines (split on 1+ newlines) equal to an earlier one: "dup_line_frac"
  double dup_line_char_frac = 0.2;  // their characters over the text's: "dup_line_char_frac"
  // (n, max fraction): characters of the most frequent word n-gram (joined by spaces) times its count: "top_n_gram"
  std::vector<std::pair<int, double>> top_n_grams = {{2, 0.2}, {3, 0.18}, {4, 0.16}};
  // (n, max fraction): characters of n-grams (joined without spaces) repeating an earlier one, scanning left to
  // right and jumping past each repeat: "duplicated_n_n_grams"
  std::vector<std::pair<int, double>> dup_n_grams = {{5, 0.15}, {6, 0.14}, {7, 0.13}, {8, 0.12}, {9, 0.11}, {10, 0.10}};
  void validate() const;  // ConfigError for n < 1 or a fraction outside [0, 1]
};

// An empty text is dropped as "empty"; the rules then run in the order of the config's fields.
FilterResult gopher_repetition(std::string_view text, const GopherRepetitionConfig& config = {});

}  // namespace troupe::dataprep
