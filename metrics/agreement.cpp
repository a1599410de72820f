// Cohen's and Fleiss' kappa, computed as scikit-learn and statsmodels compute them (same matrices, same order of
// operations where it matters for the last bits). Not the pairing of labellers or items (dataprep/label_agreement).
#include "metrics/agreement.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/errors.h"

namespace troupe::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The categories (sklearn: `labels`, else the sorted union) and each label's position among them.
std::map<int, size_t> category_positions(const std::vector<int>& a, const std::vector<int>& b,
                                         const std::optional<std::vector<int>>& labels) {
  std::vector<int> cats;
  if (labels) {
    cats = *labels;
  } else {
    std::set<int> seen(a.begin(), a.end());
    seen.insert(b.begin(), b.end());
    cats.assign(seen.begin(), seen.end());
  }
  std::map<int, size_t> pos;
  for (size_t i = 0; i < cats.size(); ++i) {
    if (!pos.emplace(cats[i], i).second) throw DataError(fmt::format("cohen_kappa: label {} listed twice", cats[i]));
  }
  return pos;
}

double weight(size_t p, size_t q, KappaWeights w) {
  const double d = std::fabs(static_cast<double>(p) - static_cast<double>(q));
  switch (w) {
    case KappaWeights::kNone: return p == q ? 0.0 : 1.0;
    case KappaWeights::kLinear: return d;
    case KappaWeights::kQuadratic: return d * d;
  }
  return 0;
}

}  // namespace

double cohen_kappa(const std::vector<int>& a, const std::vector<int>& b, KappaWeights weights,
                   const std::optional<std::vector<int>>& labels) {
  if (a.size() != b.size()) throw DataError(fmt::format("cohen_kappa: {} labels vs {} labels", a.size(), b.size()));
  if (a.empty()) throw DataError("cohen_kappa: no items");
  const auto pos = category_positions(a, b, labels);
  const size_t k = pos.size();
  // confusion[p][q]: items rater a put in category p and rater b in q (sklearn's confusion_matrix(y1, y2)).
  std::vector<std::vector<double>> confusion(k, std::vector<double>(k, 0.0));
  for (size_t i = 0; i < a.size(); ++i) {
    const auto pa = pos.find(a[i]), pb = pos.find(b[i]);
    if (pa != pos.end() && pb != pos.end()) confusion[pa->second][pb->second] += 1;
  }
  std::vector<double> sum0(k, 0.0), sum1(k, 0.0);  // column sums (rater b), row sums (rater a)
  for (size_t p = 0; p < k; ++p) {
    for (size_t q = 0; q < k; ++q) {
      sum0[q] += confusion[p][q];
      sum1[p] += confusion[p][q];
    }
  }
  double total = 0;
  for (double s : sum0) total += s;
  if (total == 0) return kNaN;
  double observed = 0, expected = 0;
  for (size_t p = 0; p < k; ++p) {
    for (size_t q = 0; q < k; ++q) {
      const double w = weight(p, q, weights);
      observed += w * confusion[p][q];
      expected += w * (sum0[p] * sum1[q] / total);  // sklearn: outer(sum0, sum1) / sum(sum0)
    }
  }
  if (expected == 0) return kNaN;
  return 1 - observed / expected;
}

double fleiss_kappa_table(const std::vector<std::vector<int>>& table) {
  if (table.empty() || table[0].empty()) throw DataError("fleiss_kappa: empty table");
  const size_t n_cat = table[0].size();
  std::vector<double> col(n_cat, 0.0);
  double n_rat = -1, p_sum = 0, total = 0;
  for (size_t s = 0; s < table.size(); ++s) {
    if (table[s].size() != n_cat) {
      throw DataError(fmt::format("fleiss_kappa: row {} has {} categories, row 0 {}", s, table[s].size(), n_cat));
    }
    double raters = 0, squares = 0;
    for (size_t c = 0; c < n_cat; ++c) {
      const double x = table[s][c];
      raters += x;
      squares += x * x;
      col[c] += x;
    }
    if (n_rat < 0) n_rat = raters;
    if (raters != n_rat || raters < 2) {
      throw DataError(fmt::format("fleiss_kappa: subject {} has {} ratings, subject 0 {} (need the same n >= 2)", s,
                                  raters, n_rat));
    }
    p_sum += (squares - n_rat) / (n_rat * (n_rat - 1.0));
    total += raters;
  }
  const double p_mean = p_sum / static_cast<double>(table.size());
  double p_exp = 0;
  for (double c : col) p_exp += (c / total) * (c / total);
  if (p_exp == 1) return kNaN;  // statsmodels: 0 / 0
  return (p_mean - p_exp) / (1 - p_exp);
}

double fleiss_kappa(const std::vector<std::vector<int>>& ratings) {
  std::set<int> seen;
  for (const auto& row : ratings) seen.insert(row.begin(), row.end());
  std::map<int, size_t> pos;
  for (int c : seen) pos.emplace(c, pos.size());
  std::vector<std::vector<int>> table(ratings.size(), std::vector<int>(pos.size(), 0));
  for (size_t s = 0; s < ratings.size(); ++s) {
    for (int label : ratings[s]) ++table[s][pos.at(label)];
  }
  return fleiss_kappa_table(table);
}

double observed_agreement(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.size() != b.size()) throw DataError(fmt::format("agreement: {} labels vs {} labels", a.size(), b.size()));
  if (a.empty()) return kNaN;
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

}  // namespace troupe::metrics
