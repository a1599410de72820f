// Inter-rater agreement statistics with the reference packages' definitions: Cohen's kappa as scikit-learn's
// cohen_kappa_score (unweighted, linear and quadratic weights), Fleiss' kappa as statsmodels'
// fleiss_kappa(aggregate_raters(data)[0]), and the raw fraction of agreeing items. Labels are plain ints; what they
// mean (a 1-7 rating, "i better / tie / j better") and how items are paired up is the caller's business
// (dataprep/label_agreement.h). Undefined kappas are NaN, as the references return them.
#pragma once

#include <optional>
#include <vector>

namespace troupe::metrics {

enum class KappaWeights { kNone, kLinear, kQuadratic };

// Cohen's kappa of two raters' labels of the same items (a[i], b[i] for item i), sklearn's cohen_kappa_score:
// with the categories `labels` in that order when given (labels absent from both raters count; a label outside
// `labels` is ignored, as sklearn's confusion_matrix drops it), else the sorted union of the labels seen. The
// weight of a disagreement between categories at positions p and q is 1 (kNone), |p - q| (kLinear) or (p - q)^2
// (kQuadratic): positions in the category list, not label values. kappa = 1 - sum(w * observed) / sum(w * expected)
// with expected = outer(marginals) / n. NaN when that ratio is 0 / 0 (both raters used one and the same category)
// or no item has both labels in `labels`. DataError when the lengths differ or there are no items.
double cohen_kappa(const std::vector<int>& a, const std::vector<int>& b, KappaWeights weights = KappaWeights::kNone,
                   const std::optional<std::vector<int>>& labels = std::nullopt);

// Fleiss' kappa from a subjects x categories count table (table[s][c] = raters that put subject s in category c),
// statsmodels' fleiss_kappa(table, method='fleiss'): every subject needs the same number n >= 2 of ratings.
// P_s = (sum_c table[s][c]^2 - n) / (n (n - 1)), P = mean_s P_s, p_c = column sum / total, Pe = sum_c p_c^2,
// kappa = (P - Pe) / (1 - Pe); NaN when Pe == 1 (every rating in one category). DataError on an empty or ragged
// table.
double fleiss_kappa_table(const std::vector<std::vector<int>>& table);

// Fleiss' kappa of subjects x raters labels (ratings[s][r] = rater r's label of subject s), statsmodels'
// fleiss_kappa(aggregate_raters(ratings)[0]): the categories are the distinct labels seen.
double fleiss_kappa(const std::vector<std::vector<int>>& ratings);

// The fraction of items on which two raters gave the same label; NaN for no items. DataError on a length mismatch.
double observed_agreement(const std::vector<int>& a, const std::vector<int>& b);

}  // namespace troupe::metrics
