// rouge_score / rouge_score_multi / corpus_rouge against Google's rouge-score (tests/metrics/rouge_reference.py, run
// here) on variants of the shared corpus: every precision, recall and fmeasure of every pair, and the corpus means, to
// 1e-9. Plus hand-computed cases (the ROUGE paper's union-LCS example among them) and the error cases.
#include "metrics/rouge.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using nlohmann::json;
using testing::ScratchDir;

constexpr double kTol = 1e-9;

json run_reference(const ScratchDir& dir) {
  const std::string out = (dir / "rouge.json").string();
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/metrics/rouge_reference.py").string(), out},
                           std::chrono::seconds(300));
  if (r.exit_code != 0) throw std::runtime_error("rouge_reference.py failed:\n" + r.output);
  return json::parse(testing::read_file(out));
}

// Counts (and reports the first few of) the values of `got` that differ from the reference's [p, r, f] lists.
int compare(const RougeScores& got, const json& expected, const std::string& what) {
  int bad = 0;
  for (const auto& [type, prf] : expected.items()) {
    const auto it = got.find(type);
    if (it == got.end()) {
      ADD_FAILURE() << what << ": no " << type;
      ++bad;
      continue;
    }
    const double ours[3] = {it->second.precision, it->second.recall, it->second.fmeasure};
    for (int k = 0; k < 3; ++k) {
      if (std::abs(ours[k] - prf[k].get<double>()) > kTol) {
        ++bad;
        ADD_FAILURE() << what << " " << type << " "
                      << "PRF"[k] << ": ours " << ours[k] << ", rouge-score " << prf[k].get<double>();
      }
    }
  }
  return bad;
}

TEST(Rouge, EqualsRougeScoreOnCorpusVariants) {
  ScratchDir dir;
  const json ref = run_reference(dir);
  size_t pairs = 0;
  int mismatches = 0;
  for (const json& v : ref.at("variants")) {
    RougeOptions options;
    options.types = v.at("types").get<std::vector<std::string>>();
    options.use_stemmer = v.at("use_stemmer").get<bool>();
    const auto hyps = v.at("hyps").get<std::vector<std::string>>();
    const auto refs = v.at("refs").get<std::vector<std::vector<std::string>>>();
    const std::string name = v.at("name").get<std::string>() + (options.use_stemmer ? " (stemmed)" : "");
    for (size_t i = 0; i < hyps.size(); ++i) {
      const RougeScores got = refs[i].size() == 1 ? rouge_score(refs[i][0], hyps[i], options)
                                                  : rouge_score_multi(refs[i], hyps[i], options);
      const std::string what =
          name + " pair " + std::to_string(i) + " hyp " + json(hyps[i]).dump() + " refs " + json(refs[i]).dump();
      if (mismatches < 20) mismatches += compare(got, v.at("scores")[i], what);
      EXPECT_EQ(got.size(), options.types.size());
    }
    mismatches += compare(corpus_rouge(refs, hyps, options), v.at("mean"), name + " corpus mean");
    pairs += hyps.size();
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(pairs, 1000u);
}

void expect_value(const RougeValue& v, double precision, double recall) {
  EXPECT_NEAR(v.precision, precision, 1e-15);
  EXPECT_NEAR(v.recall, recall, 1e-15);
  EXPECT_NEAR(v.fmeasure, precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0, 1e-15);
}

TEST(Rouge, HandComputedPair) {
  // Unigrams: the, cat, on, mat match (the target's second "the" has no partner). Bigrams: only "the cat".
  // LCS: "the cat on mat".
  const RougeScores s = rouge_score("the cat sat on the mat", "the cat on a mat");
  ASSERT_EQ(s.size(), 4u);
  expect_value(s.at("rouge1"), 4.0 / 5, 4.0 / 6);
  expect_value(s.at("rouge2"), 1.0 / 4, 1.0 / 5);
  expect_value(s.at("rougeL"), 4.0 / 5, 4.0 / 6);
  expect_value(s.at("rougeLsum"), 4.0 / 5, 4.0 / 6);
}

TEST(Rouge, SummaryLevelUnionLcsOfThePaper) {
  // Lin (2004), 3.2: r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5; the union LCS is w1 w2 w3 w5.
  RougeOptions options;
  options.types = {"rougeLsum", "rougeL"};
  const RougeScores s = rouge_score("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", options);
  expect_value(s.at("rougeLsum"), 4.0 / 10, 4.0 / 5);
  expect_value(s.at("rougeL"), 4.0 / 10, 4.0 / 5);  // over the whole text, w1 w2 (c1) then w3 w5 (c2)
  // Ties: the backtrack moves up (to an earlier reference token) unless left is strictly longer, so each reversed
  // sentence yields its match earliest in the reference: w1 from c1, w3 from c2.
  expect_value(rouge_score("w1 w2 w3 w4 w5", "w3 w2 w1\nw5 w4 w3", options).at("rougeLsum"), 2.0 / 6, 2.0 / 5);
  // No double counting: both reference sentences reach "a b", but the candidate has one of each.
  expect_value(rouge_score("a b\na b", "a b", options).at("rougeLsum"), 2.0 / 2, 2.0 / 4);
  // Empty pieces of split("\n") are dropped; a text of only newlines scores 0.
  expect_value(rouge_score("\n\nw1 w2\n", "w2\n\n", options).at("rougeLsum"), 1.0, 0.5);
  expect_value(rouge_score("\n\n", "w1", options).at("rougeLsum"), 0, 0);
}

TEST(Rouge, TokenizerAndStemmer) {
  RougeOptions options;
  options.types = {"rouge1"};
  // Python lowercase, then runs of [a-z0-9]: "Café's" gives "caf" and "s"; the Kelvin sign lowercases to 'k'.
  expect_value(rouge_score("Café's 3.14 ΣΟΦΟΣ Kelvin\u212a", "caf s 3 14 kelvink", options).at("rouge1"), 1, 1);
  expect_value(rouge_score("running dogs", "run dog", options).at("rouge1"), 0, 0);
  options.use_stemmer = true;
  expect_value(rouge_score("running dogs", "run dog", options).at("rouge1"), 1, 1);
  // Tokens of 3 characters or fewer are not stemmed: "was" stays (Porter would make it "wa").
  expect_value(rouge_score("was", "wa", options).at("rouge1"), 0, 0);
  expect_value(rouge_score("", "", options).at("rouge1"), 0, 0);
}

TEST(Rouge, NgramOrderAndTypeNames) {
  RougeOptions options;
  options.types = {"rouge3", "rouge9", "rouge1\n"};  // re.match(r"rouge[0-9]$") also takes a final newline
  const RougeScores s = rouge_score("a b c d", "a b c x", options);
  expect_value(s.at("rouge3"), 1.0 / 2, 1.0 / 2);
  expect_value(s.at("rouge9"), 0, 0);
  expect_value(s.at("rouge1\n"), 3.0 / 4, 3.0 / 4);
}

TEST(Rouge, MultiTakesTheFirstTargetWithTheHighestF) {
  RougeOptions options;
  options.types = {"rouge1"};
  // Both targets give F = 2/3: "a b" with P = 1/2, R = 1; the long one with P = 1, R = 1/2. numpy.argmax: the first.
  const std::string shorter = "a b", longer = "a b c d e f w x";
  expect_value(rouge_score_multi({shorter, longer}, "a b c d", options).at("rouge1"), 0.5, 1);
  expect_value(rouge_score_multi({longer, shorter}, "a b c d", options).at("rouge1"), 1, 0.5);
  expect_value(rouge_score_multi({"x", "a b c d", "a"}, "a b c d", options).at("rouge1"), 1, 1);
}

TEST(Rouge, CorpusIsTheMeanOfPairs) {
  RougeOptions options;
  options.types = {"rouge1"};
  const RougeScores s = corpus_rouge({{"a b"}, {"x", "c d e f"}}, {"a", "c d"}, options);
  // Pair 1: P 1, R 1/2. Pair 2: the second reference, P 1, R 1/2.
  expect_value(s.at("rouge1"), 1, 0.5);
  EXPECT_NEAR(s.at("rouge1").fmeasure, 2.0 / 3, 1e-15);
}

TEST(Rouge, Errors) {
  RougeOptions bad;
  for (const char* type : {"rouge0", "rouge10", "rougeX", "Rouge1", "rougelsum", "rouge1\n\n"}) {
    bad.types = {type};
    EXPECT_THROW(rouge_score("a", "a", bad), ConfigError) << type;
  }
  RougeOptions split;
  split.split_summaries = true;
  EXPECT_THROW(rouge_score("a", "a", split), ConfigError);
  EXPECT_THROW(rouge_score_multi({}, "a"), DataError);
  EXPECT_THROW(corpus_rouge({{"a"}}, {"a", "b"}), DataError);
  EXPECT_THROW(corpus_rouge({}, {}), DataError);
  EXPECT_THROW(corpus_rouge({{}}, {"a"}), DataError);
  EXPECT_THROW(rouge_score("caf\xC3", "a"), DataError);
}

}  // namespace
}  // namespace troupe::metrics
