#include "metrics/classification.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "core/errors.h"

namespace troupe::metrics {
namespace {

void check_lengths(size_t a, size_t b, const char* what) {
  if (a != b) throw DataError(fmt::format("{}: {} gold values but {} predictions", what, a, b));
}

double safe_div(double num, double den) { return den == 0 ? 0.0 : num / den; }

ClassScores scores_from(double tp, double pred_count, double gold_count) {
  ClassScores s;
  s.precision = safe_div(tp, pred_count);
  s.recall = safe_div(tp, gold_count);
  // sklearn: F = (1 + b^2) * tp / ((1 + b^2) * tp + b^2 * fn + fp), 0 when the denominator is 0.
  s.f1 = safe_div(2 * tp, 2 * tp + (gold_count - tp) + (pred_count - tp));
  s.support = static_cast<int64_t>(gold_count);
  return s;
}

}  // namespace

double accuracy(const std::vector<std::string>& gold, const std::vector<std::string>& predicted) {
  check_lengths(gold.size(), predicted.size(), "accuracy");
  if (gold.empty()) throw DataError("accuracy: no examples");
  int64_t right = 0;
  for (size_t i = 0; i < gold.size(); ++i) right += gold[i] == predicted[i];
  return static_cast<double>(right) / static_cast<double>(gold.size());
}

ClassificationReport classification_report(const std::vector<std::string>& gold,
                                           const std::vector<std::string>& predicted) {
  ClassificationReport r;
  r.accuracy = accuracy(gold, predicted);
  std::set<std::string> labels(gold.begin(), gold.end());
  labels.insert(predicted.begin(), predicted.end());
  std::map<std::string, double> tp, pred_count, gold_count;
  for (size_t i = 0; i < gold.size(); ++i) {
    gold_count[gold[i]] += 1;
    pred_count[predicted[i]] += 1;
    if (gold[i] == predicted[i]) tp[gold[i]] += 1;
  }
  double tp_all = 0, n = static_cast<double>(gold.size());
  double macro_p = 0, macro_r = 0, macro_f = 0, w_p = 0, w_r = 0, w_f = 0;
  for (const auto& label : labels) {
    const ClassScores s = scores_from(tp[label], pred_count[label], gold_count[label]);
    r.per_class[label] = s;
    tp_all += tp[label];
    macro_p += s.precision;
    macro_r += s.recall;
    macro_f += s.f1;
    const double w = gold_count[label];
    w_p += w * s.precision;
    w_r += w * s.recall;
    w_f += w * s.f1;
  }
  const double k = static_cast<double>(labels.size());
  r.macro = {macro_p / k, macro_r / k, macro_f / k, static_cast<int64_t>(n)};
  r.weighted = {safe_div(w_p, n), safe_div(w_r, n), safe_div(w_f, n), static_cast<int64_t>(n)};
  r.micro = scores_from(tp_all, n, n);
  return r;
}

double expected_calibration_error(const std::vector<double>& confidences, const std::vector<int>& correct, int n_bins) {
  check_lengths(correct.size(), confidences.size(), "expected calibration error");
  if (confidences.empty()) throw DataError("expected calibration error: no examples");
  if (n_bins < 1) throw ConfigError(fmt::format("expected calibration error: n_bins must be >= 1, got {}", n_bins));
  std::vector<double> edges(n_bins + 1);
  // np.linspace(0, 1, n_bins + 1) computes i * (1 / n_bins), which is not always i / n_bins (3 * 0.1 != 0.3), and a
  // confidence on an edge must fall in the same bin as there.
  const double step = 1.0 / n_bins;
  for (int i = 0; i <= n_bins; ++i) edges[i] = static_cast<double>(i) * step;
  edges[n_bins] = 1.0;
  std::vector<double> count(n_bins, 0), conf_sum(n_bins, 0), right_sum(n_bins, 0);
  for (size_t i = 0; i < confidences.size(); ++i) {
    const double p = confidences[i];
    if (!(p >= 0 && p <= 1)) {
      throw DataError(
          fmt::format("expected calibration error: confidence {} is {}, expected a value in [0, 1]", i + 1, p));
    }
    // np.searchsorted(edges[1:-1], p) (side='left'): the number of inner edges strictly below p.
    int bin = 0;
    while (bin < n_bins - 1 && edges[bin + 1] < p) ++bin;
    count[bin] += 1;
    conf_sum[bin] += p;
    right_sum[bin] += correct[i] != 0;
  }
  double ece = 0;
  const double n = static_cast<double>(confidences.size());
  for (int b = 0; b < n_bins; ++b) {
    if (count[b] == 0) continue;
    ece += count[b] / n * std::fabs(right_sum[b] / count[b] - conf_sum[b] / count[b]);
  }
  return ece;
}

double brier_score(const std::vector<double>& probabilities, const std::vector<int>& outcomes) {
  check_lengths(outcomes.size(), probabilities.size(), "Brier score");
  if (probabilities.empty()) throw DataError("Brier score: no examples");
  double sum = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    const double d = probabilities[i] - (outcomes[i] != 0 ? 1.0 : 0.0);
    sum += d * d;
  }
  return sum / static_cast<double>(probabilities.size());
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw ConfigError(fmt::format("pass@k: need 0 <= c <= n and 1 <= k <= n, got n={} c={} k={}", n, c, k));
  }
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

double mean_pass_at_k(const std::vector<int64_t>& n, const std::vector<int64_t>& c, int64_t k) {
  if (n.size() != c.size())
    throw DataError(fmt::format("pass@k: {} sample counts but {} pass counts", n.size(), c.size()));
  if (n.empty()) throw DataError("pass@k: no problems");
  double sum = 0;
  for (size_t i = 0; i < n.size(); ++i) sum += pass_at_k(n[i], c[i], k);
  return sum / static_cast<double>(n.size());
}

}  // namespace troupe::metrics
