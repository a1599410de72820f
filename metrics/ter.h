// sacreBLEU 2.6.0's TER (Snover et al., 2006), equal to sacrebleu's TER.corpus_score / sentence_score: its Tercom
// tokenizer, greedy block shifts ranked as Tercom ranks them (at most 10 words, 50 positions, 1000 candidates per
// segment) and the beam edit distance around the length-ratio diagonal; like sacreBLEU it tokenizes references twice
// (which changes some normalised ones). Not Tercom itself, where sacreBLEU differs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::metrics {

// The options of sacrebleu.metrics.TER (and of its TercomTokenizer).
struct TerOptions {
  bool normalized = false;      // Tercom's normalisation: XML entities, punctuation split off, possessive 's
  bool no_punct = false;        // remove . , ? : ; ! " ( ) (and CJK punctuation with asian_support)
  bool asian_support = false;   // with normalized: split CJK characters; with no_punct: remove CJK punctuation
  bool case_sensitive = false;  // false: Python str.lower() first
};

// sacrebleu's TERScore; the score is on the 0-100 scale (100 * edits / average reference length).
struct TerScore {
  double score = 0;
  int64_t num_edits = 0;  // edits summed over segments (best reference of each)
  double ref_length = 0;  // average reference length summed over segments
  std::string signature;  // e.g. "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0"
  // sacrebleu's str(score): "TER = 61.54".
  std::string format() const;
};

// refs[i] holds the references of hyps[i]; every hypothesis has the same number (>= 1) of references, else
// DataError. Invalid UTF-8 is a DataError naming the line.
TerScore corpus_ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                    const TerOptions& options = {});
TerScore sentence_ter(const std::string& hyp, const std::vector<std::string>& refs, const TerOptions& options = {});

// sacrebleu's TercomTokenizer(...)(line): the tokens joined by single spaces.
std::string tokenize_tercom(std::string_view line, const TerOptions& options = {});

// lib_ter.translation_edit_rate on token ids: the edits (shifts + edit distance) turning `hyp` into `ref`.
int64_t translation_edits(const std::vector<uint32_t>& hyp, const std::vector<uint32_t>& ref);

}  // namespace troupe::metrics
