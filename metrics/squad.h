// Extractive question answering scores as the official SQuAD v1.1 evaluation script computes them: answers are
// normalised (Python's str.lower, ASCII punctuation removed, the articles a/an/the removed at Unicode word
// boundaries, whitespace collapsed), exact match compares the normalised strings, F1 the bag of normalised tokens;
// each prediction takes the maximum over its gold answers, and the corpus scores are means in percent.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::metrics {

// The SQuAD script's normalize_answer.
std::string squad_normalize(std::string_view answer);
// exact_match_score and f1_score of one prediction against one gold answer (F1 is 0 when no token is shared, also
// when both normalise to nothing, as in v1.1).
double squad_exact(std::string_view prediction, std::string_view gold);
double squad_f1(std::string_view prediction, std::string_view gold);

struct SquadScores {
  double exact_match = 0;  // percent, as the script reports
  double f1 = 0;           // percent
  int64_t count = 0;
};
// metric_max_over_ground_truths per prediction, averaged. golds[i]: the gold answers of predictions[i] (at least
// one each; DataError otherwise).
SquadScores squad_scores(const std::vector<std::string>& predictions,
                         const std::vector<std::vector<std::string>>& golds);

}  // namespace troupe::metrics
