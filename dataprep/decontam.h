// Evaluation-set decontamination for `troupe data clean`: an index of the word n-grams (n = 13, as GPT-3 and
// lm-evaluation-harness's Janitor) of the evaluation texts, and a check of training documents against it. In memory
// and exact (the n-gram strings themselves are kept, so a report can name them): not datatrove's hashed on-disk index,
// and it removes whole documents, not the Janitor's 200-character windows around each match.
//
// Normalisation and n-grams are lm_eval/decontamination/janitor.py's (0.4.13), checked against it in
// tests/dataprep/decontam_test.cpp: Janitor.normalize_string lower-cases ASCII letters only and deletes
// string.punctuation (ASCII only: "É", "—" and "’" stay), then word_ngrams splits on Python str.split() whitespace and
// joins each n consecutive words with one space. Training documents are normalised the same way before they are
// split, as the Janitor does for the contaminants it registers. (Janitor.clean_python instead splits the raw training
// text and normalises each n-gram afterwards, so a standalone punctuation token such as " -- " there becomes an empty
// word and hides the match; this index catches those too: a superset of the Janitor's matches.)
//
// datatrove 0.10.1's NGramsDecontFilter does the same with other choices: n = 12, spaCy word tokens of its
// simplify_text (which also removes punctuation and lower-cases), 64-bit hashes of the n-grams instead of the strings,
// and n-grams of the gold answer plus those straddling prompt and answer (ours: whatever text is added, so add prompt
// + answer as one text to get both). A document is dropped there on any one match (our min_matches = 1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::dataprep {

struct DecontamConfig {
  int n = 13;             // words per n-gram (GPT-3; lm-eval's Janitor ngram_n)
  int min_matches = 1;    // distinct evaluation n-grams a training document must share to be contaminated
  void validate() const;  // ConfigError for n < 1 or min_matches < 1
};

// Janitor.normalize_string: A-Z -> a-z, the 32 characters of Python's string.punctuation deleted, everything else
// (non-ASCII letters and punctuation, whitespace) kept. DataError for malformed UTF-8.
// Example: "Don't STOP -- Über!" -> "dont stop  Über".
std::string janitor_normalize(std::string_view text);

// janitor.word_ngrams: the n-grams of text.split(), each joined by one space, in order, repeats kept; none when the
// text has fewer than n words. Example (n = 2): "a  b c" -> {"a b", "b c"}.
std::vector<std::string> word_ngrams(std::string_view text, int n);

// What check() found in one training document.
struct ContaminationReport {
  bool contaminated = false;          // matched.size() >= min_matches
  std::vector<std::string> matched;   // distinct shared n-grams (normalised), in order of first occurrence
  std::vector<std::string> eval_ids;  // ids of the evaluation texts containing any of them, in order of add()
};

class DecontamIndex {
 public:
  explicit DecontamIndex(DecontamConfig config = {});

  // Index the n-grams of one evaluation text (prompt and answer together, say) under `eval_id`. A text of fewer than
  // n words adds nothing (as in the Janitor) and is counted in short_texts().
  void add(const std::string& eval_id, std::string_view text);

  // The training document against the index: costs one n-gram string (~n * 6 bytes) and one hash lookup per word.
  ContaminationReport check(std::string_view document) const;

  size_t size() const { return ngrams_.size(); }  // distinct n-grams indexed
  size_t short_texts() const { return short_texts_; }
  const DecontamConfig& config() const { return config_; }

 private:
  DecontamConfig config_;
  std::unordered_map<std::string, std::vector<uint32_t>> ngrams_;  // n-gram -> indices into eval_ids_, ascending
  std::vector<std::string> eval_ids_;                              // in order of add()
  size_t short_texts_ = 0;
};

}  // namespace troupe::dataprep
