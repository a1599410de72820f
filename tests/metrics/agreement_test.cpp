// metrics/agreement.h: hand-computed Cohen's and Fleiss' kappas, then every case of
// tests/metrics/agreement_reference.py (scikit-learn's cohen_kappa_score and statsmodels' fleiss_kappa, run in the
// test) to 1e-12, NaN where the references return NaN.
#include "metrics/agreement.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using nlohmann::json;

const json& reference() {
  static const json data = [] {
    testing::ScratchDir dir("troupe-agreement");
    const auto out = dir / "reference.json";
    const auto r = testing::run_process(
        {TROUPE_PYTHON, (testing::source_dir() / "tests/metrics/agreement_reference.py").string(), out.string()},
        std::chrono::seconds(300));
    if (r.exit_code != 0) throw std::runtime_error("agreement_reference.py failed:\n" + r.output);
    return json::parse(testing::read_file(out));
  }();
  return data;
}

void expect_same(double got, const json& want, const std::string& what) {
  if (want.is_null()) {
    EXPECT_TRUE(std::isnan(got)) << what << ": " << got << ", the reference returns NaN";
  } else {
    EXPECT_NEAR(got, want.get<double>(), 1e-12) << what;
  }
}

TEST(CohenKappa, HandComputedCases) {
  // confusion [[1, 1], [0, 2]]: po = 3/4, pe = (2*1 + 2*3) / 16 = 1/2, kappa = (3/4 - 1/2) / (1/2).
  EXPECT_DOUBLE_EQ(cohen_kappa({1, 1, 2, 2}, {1, 2, 2, 2}), 0.5);
  // The one disagreement is one step apart, so the linear and quadratic weights agree: 1 - 1 / 2.
  EXPECT_DOUBLE_EQ(cohen_kappa({1, 1, 2, 2}, {1, 2, 2, 2}, KappaWeights::kLinear, std::vector<int>{1, 2, 3}), 0.5);
  // a = (1, 3, 2), b = (3, 1, 2): po = pe = 1/3 -> 0; linear 1 - 4 / (8/3) = -0.5; quadratic 1 - 8 / 4 = -1.
  EXPECT_NEAR(cohen_kappa({1, 3, 2}, {3, 1, 2}), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(cohen_kappa({1, 3, 2}, {3, 1, 2}, KappaWeights::kLinear), -0.5);
  EXPECT_DOUBLE_EQ(cohen_kappa({1, 3, 2}, {3, 1, 2}, KappaWeights::kQuadratic), -1.0);
  // Weights come from positions among the categories, not label values: 10 and 50 are neighbours here.
  EXPECT_DOUBLE_EQ(cohen_kappa({10, 50, 20}, {50, 10, 20}, KappaWeights::kLinear), -0.5);
  EXPECT_DOUBLE_EQ(cohen_kappa({1, 2, 3}, {1, 2, 3}), 1.0);
  EXPECT_TRUE(std::isnan(cohen_kappa({4, 4, 4}, {4, 4, 4})));  // 0 / 0: both raters used one category
  EXPECT_THROW(cohen_kappa({1, 2}, {1}), DataError);
  EXPECT_THROW(cohen_kappa({}, {}), DataError);
}

TEST(FleissKappa, HandComputedCases) {
  // Counts [[3, 0], [2, 1]]: P = (1 + 1/3) / 2 = 2/3, p = (5/6, 1/6), Pe = 26/36, kappa = (2/3 - 13/18) / (5/18).
  EXPECT_NEAR(fleiss_kappa({{0, 0, 0}, {0, 0, 1}}), -0.2, 1e-15);
  EXPECT_NEAR(fleiss_kappa_table({{3, 0}, {2, 1}}), -0.2, 1e-15);
  EXPECT_DOUBLE_EQ(fleiss_kappa({{1, 1}, {2, 2}, {3, 3}}), 1.0);
  EXPECT_TRUE(std::isnan(fleiss_kappa({{2, 2, 2}, {2, 2, 2}})));
  EXPECT_THROW(fleiss_kappa_table({{2, 0}, {1, 0}}), DataError);  // subjects with different rating counts
  EXPECT_THROW(fleiss_kappa_table({}), DataError);
}

TEST(ObservedAgreement, FractionOfEqualLabels) {
  EXPECT_DOUBLE_EQ(observed_agreement({1, 2, 3, 4}, {1, 2, 0, 0}), 0.5);
  EXPECT_TRUE(std::isnan(observed_agreement({}, {})));
}

TEST(CohenKappa, EqualsScikitLearnOnRandomAndEdgeCases) {
  const json& cases = reference()["cohen"];
  ASSERT_GT(cases.size(), 90u);
  size_t undefined = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const auto a = c["a"].get<std::vector<int>>(), b = c["b"].get<std::vector<int>>();
    std::optional<std::vector<int>> labels;
    if (!c["labels"].is_null()) labels = c["labels"].get<std::vector<int>>();
    const std::string what = "case " + std::to_string(i) + " (" + std::to_string(a.size()) + " items)";
    expect_same(cohen_kappa(a, b, KappaWeights::kNone, labels), c["None"], what + " unweighted");
    expect_same(cohen_kappa(a, b, KappaWeights::kLinear, labels), c["linear"], what + " linear");
    expect_same(cohen_kappa(a, b, KappaWeights::kQuadratic, labels), c["quadratic"], what + " quadratic");
    undefined += c["None"].is_null();
  }
  EXPECT_GT(undefined, 0u);  // the edge cases include undefined kappas
}

TEST(FleissKappa, EqualsStatsmodelsOnRandomAndEdgeCases) {
  const json& cases = reference()["fleiss"];
  ASSERT_GT(cases.size(), 45u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ratings = cases[i]["ratings"].get<std::vector<std::vector<int>>>();
    expect_same(fleiss_kappa(ratings), cases[i]["kappa"], "case " + std::to_string(i));
  }
}

}  // namespace
}  // namespace troupe::metrics
