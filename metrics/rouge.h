// Google's rouge-score (rouge_score.rouge_scorer.RougeScorer, version 0.1.2), exactly: ROUGE-N for N in 1..9,
// ROUGE-L (LCS over the whole text) and ROUGE-Lsum (summary-level union LCS over "\n"-separated sentences), with its
// default tokenizer (Python lowercase, runs of [a-z0-9]) and optionally NLTK's Porter stemmer on tokens of 4+ letters.
// Not the Perl ROUGE-1.5.5 (no stopwords, no -l/-b truncation, no jackknifing), nor rouge-score's bootstrap intervals.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace troupe::metrics {

struct RougeOptions {
  // "rouge1" .. "rouge9" (rouge-score accepts one digit; "rouge0" and anything else are ConfigErrors), "rougeL",
  // "rougeLsum". Each is a key of the result.
  std::vector<std::string> types = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
  bool use_stemmer = false;  // Porter-stem (NLTK) every token longer than 3 characters, as use_stemmer=True does
  // rouge-score splits rougeLsum's sentences with nltk.sent_tokenize (Punkt) when true. Not implemented (NLTK's punkt
  // data is not installed to check against): true is a ConfigError. Put "\n" between sentences instead.
  bool split_summaries = false;
};

struct RougeValue {
  double precision = 0, recall = 0, fmeasure = 0;
};

using RougeScores = std::map<std::string, RougeValue>;  // keyed by type

// RougeScorer(types, use_stemmer).score(target, prediction). For rougeLsum the sentences are the non-empty pieces of
// text.split("\n"). Example: target "the cat sat on the mat", prediction "the cat on a mat": rouge1 precision 4/5,
// recall 4/6; rougeL: the LCS "the cat on mat" has 4 tokens, so the same.
// Thread-safe; each thread keeps its own scratch buffers and a bounded cache of stems. Bad UTF-8 is a DataError.
RougeScores rouge_score(const std::string& target, const std::string& prediction, const RougeOptions& options = {});

// score_multi: each target scored against the prediction; per type, the target with the highest fmeasure (the first
// one on ties, as numpy.argmax). No targets is a DataError (numpy.argmax of an empty list raises).
RougeScores rouge_score_multi(const std::vector<std::string>& targets, const std::string& prediction,
                              const RougeOptions& options = {});

// The mean over pairs of rouge_score_multi(refs[i], hyps[i]), per type and per precision/recall/fmeasure. rouge-score
// has no corpus score as such: its BootstrapAggregator reports this mean as "mid" only approximately (the median of
// 1000 means of resampled pairs, so with resampling noise); we report the plain mean, which the test checks against
// numpy's mean of the reference's per-pair scores. refs.size() != hyps.size(), no pairs, or a pair with no reference
// is a DataError.
RougeScores corpus_rouge(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps,
                         const RougeOptions& options = {});

}  // namespace troupe::metrics
