// metrics/squad.h, metrics/classification.h and metrics/unicode.h against their references, run in the test:
// tests/metrics/scalar_reference.py writes the official SQuAD v1.1 script's, scikit-learn's, HumanEval's and
// Python's own values, and every one must match.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "metrics/classification.h"
#include "metrics/squad.h"
#include "metrics/unicode.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using nlohmann::json;

const json& reference() {
  static const json data = [] {
    testing::ScratchDir dir("troupe-scalar-metrics");
    const auto out = dir / "reference.json";
    const auto r = testing::run_process(
        {TROUPE_PYTHON, (testing::source_dir() / "tests/metrics/scalar_reference.py").string(), out.string()},
        std::chrono::seconds(300));
    if (r.exit_code != 0) throw std::runtime_error("scalar_reference.py failed:\n" + r.output);
    return json::parse(testing::read_file(out));
  }();
  return data;
}

std::string show(const std::string& s) { return json(s).dump(); }

TEST(Squad, NormalisationExactMatchAndF1EqualTheOfficialScriptOnTheCorpus) {
  const json& ref = reference()["squad"];
  std::vector<std::string> predictions;
  std::vector<std::vector<std::string>> golds;
  for (const auto& c : ref["cases"]) {
    const std::string p = c["prediction"];
    const auto g = c["golds"].get<std::vector<std::string>>();
    predictions.push_back(p);
    golds.push_back(g);
    ASSERT_EQ(squad_normalize(p), c["normalized"].get<std::string>()) << show(p);
    double em = 0, f1 = 0;
    for (const auto& one : g) {
      em = std::max(em, squad_exact(p, one));
      f1 = std::max(f1, squad_f1(p, one));
    }
    ASSERT_EQ(em, c["em"].get<double>()) << show(p) << " vs " << c["golds"].dump();
    ASSERT_NEAR(f1, c["f1"].get<double>(), 1e-15) << show(p) << " vs " << c["golds"].dump();
  }
  EXPECT_GT(predictions.size(), 500u);
  const SquadScores s = squad_scores(predictions, golds);
  EXPECT_NEAR(s.exact_match, ref["exact_match"].get<double>(), 1e-9);
  EXPECT_NEAR(s.f1, ref["f1"].get<double>(), 1e-9);
  EXPECT_GT(s.exact_match, 1.0);  // the corpus exercises both outcomes
  EXPECT_LT(s.exact_match, 99.0);
}

TEST(Squad, HandCases) {
  EXPECT_EQ(squad_normalize("The  Cat, the HAT!"), "cat hat");
  EXPECT_EQ(squad_normalize("theatre"), "theatre");  // no article inside a word
  EXPECT_DOUBLE_EQ(squad_f1("cat sat on mat", "the cat sat"), 2 * (2.0 / 4) * (2.0 / 2) / (2.0 / 4 + 2.0 / 2));
  EXPECT_EQ(squad_f1("", ""), 0.0);  // v1.1: no shared token, F1 0 (exact match 1)
  EXPECT_EQ(squad_exact("", "the"), 1.0);
  EXPECT_THROW(squad_scores({"a"}, {{}}), DataError);
  EXPECT_THROW(squad_scores({"a"}, {}), DataError);
}

TEST(Classification, AccuracyPrecisionRecallF1EqualScikitLearn) {
  for (const auto& c : reference()["classification"]) {
    const auto gold = c["gold"].get<std::vector<std::string>>();
    const auto pred = c["predicted"].get<std::vector<std::string>>();
    const ClassificationReport r = classification_report(gold, pred);
    EXPECT_NEAR(r.accuracy, c["accuracy"].get<double>(), 1e-15);
    ASSERT_EQ(r.per_class.size(), c["per_class"].size());
    for (const auto& [label, v] : c["per_class"].items()) {
      const ClassScores& s = r.per_class.at(label);
      EXPECT_NEAR(s.precision, v[0].get<double>(), 1e-12) << label;
      EXPECT_NEAR(s.recall, v[1].get<double>(), 1e-12) << label;
      EXPECT_NEAR(s.f1, v[2].get<double>(), 1e-12) << label;
      EXPECT_EQ(s.support, v[3].get<int64_t>()) << label;
    }
    const std::pair<const char*, const ClassScores*> averages[] = {
        {"micro", &r.micro}, {"macro", &r.macro}, {"weighted", &r.weighted}};
    for (const auto& [name, s] : averages) {
      EXPECT_NEAR(s->precision, c[name][0].get<double>(), 1e-12) << name;
      EXPECT_NEAR(s->recall, c[name][1].get<double>(), 1e-12) << name;
      EXPECT_NEAR(s->f1, c[name][2].get<double>(), 1e-12) << name;
    }
  }
  EXPECT_THROW(accuracy({"a"}, {"a", "b"}), DataError);
  EXPECT_THROW(accuracy({}, {}), DataError);
}

TEST(Calibration, EceOverCalibrationCurveBinsAndBrierEqualScikitLearn) {
  int checked = 0;
  for (const auto& c : reference()["calibration"]) {
    const auto conf = c["confidences"].get<std::vector<double>>();
    const auto correct = c["correct"].get<std::vector<int>>();
    if (!c["ece"].is_null()) {
      EXPECT_NEAR(expected_calibration_error(conf, correct, c["bins"].get<int>()), c["ece"].get<double>(), 1e-12);
      ++checked;
    }
    if (!c["brier"].is_null()) {
      EXPECT_NEAR(brier_score(conf, correct), c["brier"].get<double>(), 1e-12);
    }
  }
  EXPECT_GT(checked, 20);
  // Hand case: two bins; [0.2 wrong, 0.4 right] in bin 0 (acc 0.5, conf 0.3), [0.9 right] in bin 1 (acc 1, conf 0.9).
  EXPECT_NEAR(expected_calibration_error({0.2, 0.4, 0.9}, {0, 1, 1}, 2), 2.0 / 3 * 0.2 + 1.0 / 3 * 0.1, 1e-15);
  EXPECT_THROW(expected_calibration_error({1.5}, {1}, 10), DataError);
  EXPECT_THROW(expected_calibration_error({0.5}, {1}, 0), ConfigError);
}

TEST(PassAtK, UnbiasedEstimatorEqualsHumanEvalAndTheClosedForm) {
  for (const auto& row : reference()["pass_at_k"]) {
    const int64_t n = row[0], c = row[1], k = row[2];
    EXPECT_NEAR(pass_at_k(n, c, k), row[3].get<double>(), 1e-12) << n << " " << c << " " << k;
  }
  // Closed forms: pass@1 = c / n; pass@n = 1 if any sample passes.
  EXPECT_NEAR(pass_at_k(10, 3, 1), 0.3, 1e-15);
  EXPECT_EQ(pass_at_k(10, 1, 10), 1.0);
  EXPECT_EQ(pass_at_k(10, 0, 10), 0.0);
  // 1 - C(2, 2) / C(4, 2) = 1 - 1/6.
  EXPECT_NEAR(pass_at_k(4, 2, 2), 5.0 / 6, 1e-15);
  EXPECT_NEAR(mean_pass_at_k({4, 10}, {2, 3}, 1), (0.5 + 0.3) / 2, 1e-15);
  EXPECT_THROW(pass_at_k(5, 6, 1), ConfigError);
  EXPECT_THROW(pass_at_k(5, 1, 6), ConfigError);
}

TEST(Unicode, SpaceAlnumAndLowerEqualPythonOnEveryAssignedCodePoint) {
  const json& u = reference()["unicode"];
  std::set<char32_t> spaces, alnum;
  for (const auto& cp : u["spaces"]) spaces.insert(cp.get<char32_t>());
  for (const auto& cp : u["alnum"]) alnum.insert(cp.get<char32_t>());
  for (char32_t c = 0; c < 0x30000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    ASSERT_EQ(is_space(c), spaces.count(c) > 0) << std::hex << static_cast<uint32_t>(c);
  }
  int mismatched = 0;
  for (char32_t c : alnum) {
    if (!is_alnum(c) && ++mismatched < 5) {
      ADD_FAILURE() << "Python's isalnum is true for U+" << std::hex << static_cast<uint32_t>(c);
    }
  }
  for (const auto& [cp, low] : u["lower"].items()) {
    const char32_t c = static_cast<char32_t>(std::stoul(cp));
    ASSERT_EQ(lower(encode_utf8(std::u32string(1, c))), low.get<std::string>()) << std::hex << static_cast<uint32_t>(c);
  }
  for (const auto& t : u["texts"]) {
    const std::string text = t["text"];
    EXPECT_EQ(lower(text), t["lower"].get<std::string>()) << show(text);
    EXPECT_EQ(split_whitespace(text), t["split"].get<std::vector<std::string>>()) << show(text);
    EXPECT_EQ(strip(text), t["strip"].get<std::string>()) << show(text);
  }
}

TEST(Unicode, MalformedUtf8IsADataErrorNamingTheOffset) {
  try {
    decode_utf8("ab\xC3", "hyp line 4");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "hyp line 4: invalid UTF-8 at byte 2");
  }
  EXPECT_THROW(decode_utf8("\xC0\x80"), DataError);      // overlong
  EXPECT_THROW(decode_utf8("\xED\xA0\x80"), DataError);  // surrogate
  EXPECT_EQ(encode_utf8(decode_utf8("é😀")), "é😀");
}

}  // namespace
}  // namespace troupe::metrics
