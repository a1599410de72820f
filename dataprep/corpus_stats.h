// Corpus statistics for `troupe data clean` reports: document count, characters / words / lines per document with
// log2 histograms, vocabulary size and top words, and a table of gendered words (the seeds' bias check). One pass,
// in memory (the vocabulary map grows with the corpus); not a tokenizer's vocabulary and not a bias metric beyond
// counting the fixed word list below.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::dataprep {

// Fixed log2 bins of a non-negative count x: bin 0 holds x = 0, bin i (1 <= i < 31) holds 2^(i-1) <= x < 2^i
// (bin 1: 1, bin 2: 2-3, bin 3: 4-7, ...), and bin 31 holds x >= 2^30. The same bins for every corpus, so
// histograms of two corpora compare bin by bin.
inline constexpr int kHistogramBins = 32;
int log2_bin(int64_t x);  // the bin of x as above

// One per-document length across the corpus.
struct LengthStats {
  int64_t total = 0;  // summed over documents
  int64_t min = 0;    // 0 for an empty corpus
  int64_t max = 0;
  double mean = 0;                                  // total / documents; 0 for an empty corpus
  std::array<int64_t, kHistogramBins> histogram{};  // documents per log2_bin of the length
};

// Gendered words, matched case-insensitively on vocabulary words (see CorpusStats::words).
struct GenderCounts {
  std::map<std::string, int64_t> male;    // each word of kMaleWords -> occurrences (zeros included)
  std::map<std::string, int64_t> female;  // each word of kFemaleWords -> occurrences
  int64_t male_total = 0;
  int64_t female_total = 0;
  std::optional<double> he_she_ratio;       // count("he") / count("she"); nullopt when "she" never occurs
  std::optional<double> male_female_ratio;  // male_total / female_total; nullopt when female_total is 0
};

// The fixed lists (lower case). "her" counts once, as female, whether object or possessive.
extern const std::vector<std::string> kMaleWords;    // he him his himself man men boy boys father fathers son sons
                                                     // brother brothers husband husbands king kings mr sir gentleman
                                                     // gentlemen male males uncle uncles nephew grandfather boyfriend
extern const std::vector<std::string> kFemaleWords;  // she her hers herself woman women girl girls mother mothers
                                                     // daughter daughters sister sisters wife wives queen queens mrs
                                                     // ms madam lady ladies female females aunt aunts niece
                                                     // grandmother girlfriend

struct CorpusStats {
  int64_t documents = 0;
  LengthStats chars;         // code points per document
  LengthStats words;         // Python str.split() pieces per document
  LengthStats lines;         // "\n"-separated lines per document: count("\n") + 1 if the text does not end in "\n",
                             // so "" -> 0, "a" -> 1, "a\n" -> 1, "a\n\nb" -> 3
  int64_t vocab_tokens = 0;  // vocabulary words in the corpus (see corpus_words)
  int64_t vocab_size = 0;    // distinct vocabulary words
  std::vector<std::pair<std::string, int64_t>> top_words;  // the top_k most frequent, count descending then word
  GenderCounts gender;
};

// The vocabulary words of one document: Python's [w.strip(string.punctuation) for w in text.lower().split()], empty
// ones dropped. Example: "The cat's (HAT)!" -> {"the", "cat's", "hat"}. DataError for malformed UTF-8.
std::vector<std::string> corpus_words(std::string_view text);

// Accumulates documents one at a time; finish() may be called any time and again after more add()s.
class CorpusStatsBuilder {
 public:
  explicit CorpusStatsBuilder(int top_k = 20);  // ConfigError for top_k < 0
  void add(std::string_view text);
  CorpusStats finish() const;

 private:
  int top_k_;
  CorpusStats stats_;  // documents and lengths kept current; vocabulary and gender fields filled by finish()
  std::unordered_map<std::string, int64_t> vocab_;
};

// The statistics as "key value" lines for a log (histograms as their non-empty bins, "[lo, hi): n").
std::string format_corpus_stats(const CorpusStats& stats);

}  // namespace troupe::dataprep
