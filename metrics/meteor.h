// METEOR as NLTK 3.10 computes it (nltk.translate.meteor_score): unigrams aligned by exact match, then Porter stem,
// then WordNet synonym; the harmonic mean of precision and recall, weighted to recall, times a fragmentation penalty;
// the best over the references. Not METEOR 1.5 (the Java tool: paraphrase tables, per-language weights, function
// words): its scores differ.
#pragma once

#include <string>
#include <vector>

namespace troupe::metrics {

struct MeteorOptions {
  double alpha = 0.9;       // precision's weight in the mean: Fmean = P*R / (alpha*P + (1-alpha)*R)
  double beta = 3.0;        // the penalty's exponent: penalty = gamma * (chunks / matches)^beta
  double gamma = 0.5;       // the penalty's weight; score = (1 - penalty) * Fmean
  std::string wordnet_dir;  // the WordNet 3.0 database (index.*, data.*, *.exc); empty = /usr/share/wordnet
};

// NLTK's meteor_score([r.split() for r in refs], hyp.split(), wordnet=<WordNet of options.wordnet_dir>, alpha=...,
// beta=..., gamma=...): tokens are Python's str.split(), lowercased with Python's str.lower(); the maximum over
// the references; 0 when the hypothesis or a reference is empty or nothing matches.
// Worked example: hyp "the cat sat down", ref "sat down the cat": 4 matches, P = R = Fmean = 1, 2 chunks ("the cat",
// "sat down"), penalty = 0.5 * (2/4)^3 = 1/16, score = 15/16. A repeated word is matched from the hypothesis's end
// to the reference's last free copy, not to the fewest chunks: hyp "the cat sat on the mat", ref "on the mat the cat
// sat" aligns hyp "the"(0) to ref "the"(1), so 5 chunks and score = 1 - 0.5 * (5/6)^3 = 307/432.
// Throws DataError on no references, malformed UTF-8, or a missing WordNet (install Debian's wordnet-base).
double meteor_score(const std::vector<std::string>& refs, const std::string& hyp, const MeteorOptions& options = {});

// The mean of meteor_score(refs[i], hyps[i]) over the sentences, summed in order (NLTK has no corpus METEOR; this is
// the usual sentence average). Throws DataError when refs and hyps differ in size or are empty.
double corpus_meteor(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps,
                     const MeteorOptions& options = {});

}  // namespace troupe::metrics
