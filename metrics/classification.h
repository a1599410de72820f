// Scalar metrics of classification, calibration and sampled code generation, with scikit-learn's definitions:
// accuracy; precision, recall and F1 per class and averaged (micro, macro, weighted; zero_division = 0);
// expected calibration error over scikit-learn's calibration_curve bins; the Brier score (brier_score_loss);
// and pass@k with the unbiased estimator of Chen et al. (2021).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace troupe::metrics {

// The fraction of positions where predicted == gold (sklearn accuracy_score). DataError on a length mismatch.
double accuracy(const std::vector<std::string>& gold, const std::vector<std::string>& predicted);

struct ClassScores {
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;  // gold occurrences
};

struct ClassificationReport {
  double accuracy = 0;
  std::map<std::string, ClassScores> per_class;  // every label seen in gold or predicted, sorted
  ClassScores micro;                             // support: all examples
  ClassScores macro;                             // unweighted mean over the labels
  ClassScores weighted;                          // mean weighted by gold support
};
// sklearn's precision_recall_fscore_support(..., average=None|'micro'|'macro'|'weighted', zero_division=0) over the
// union of the gold and predicted labels.
ClassificationReport classification_report(const std::vector<std::string>& gold,
                                           const std::vector<std::string>& predicted);

// Expected calibration error: confidences in [0, 1], correct[i] whether prediction i was right; n_bins equal-width
// bins as sklearn.calibration.calibration_curve(strategy='uniform') places them ([0, 1/n], (1/n, 2/n], ...), ECE =
// sum over non-empty bins of (bin count / n) * |accuracy in bin - mean confidence in bin|.
double expected_calibration_error(const std::vector<double>& confidences, const std::vector<int>& correct,
                                  int n_bins = 10);
// sklearn brier_score_loss for binary outcomes: mean (probability - outcome)^2.
double brier_score(const std::vector<double>& probabilities, const std::vector<int>& outcomes);

// The unbiased pass@k estimate from n samples of which c pass: 1 - C(n - c, k) / C(n, k), computed as the product
// 1 - prod_{i = n - c + 1}^{n} (1 - k / i) (exact when n - c < k: 1). ConfigError unless 0 <= c <= n and 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);
// The mean of pass_at_k over problems (n[i] samples, c[i] correct).
double mean_pass_at_k(const std::vector<int64_t>& n, const std::vector<int64_t>& c, int64_t k);

}  // namespace troupe::metrics
