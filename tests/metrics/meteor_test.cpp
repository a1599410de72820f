// METEOR against NLTK 3.10's meteor_score on the shared corpus (1, 2 and 3 references, several seeds, default and
// other weights) and on pairs built for the stem and synonym stages (tests/metrics/meteor_reference.py meteor), plus
// hand-computed cases and the error cases. The WordNet reader itself is tested in wordnet_test.cpp.
#include "metrics/meteor.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using troupe::testing::ScratchDir;
using Json = nlohmann::json;

constexpr double kTolerance = 1e-9;

Json run_reference(const ScratchDir& scratch) {
  const auto out = scratch / "meteor.json";
  const auto script = troupe::testing::source_dir() / "tests/metrics/meteor_reference.py";
  const auto result =
      troupe::testing::run_process({TROUPE_PYTHON, script.string(), "meteor", out.string()}, std::chrono::seconds(280));
  if (result.exit_code != 0) throw std::runtime_error("meteor_reference.py failed:\n" + result.output);
  return Json::parse(troupe::testing::read_file(out));
}

// A WordNet database with no words: METEOR over it has no synonym stage.
void write_empty_wordnet(const std::filesystem::path& dir) {
  for (const char* pos : {"noun", "verb", "adj", "adv"}) {
    troupe::testing::write_file(dir / (std::string("index.") + pos), "  license\n");
    troupe::testing::write_file(dir / (std::string("data.") + pos), "");
    troupe::testing::write_file(dir / (std::string(pos) + ".exc"), "");
  }
}

TEST(Meteor, MatchesNltkOnTheCorpusAndOnStemAndSynonymPairs) {
  ScratchDir scratch("meteor-ref");
  const Json ref = run_reference(scratch);
  ScratchDir empty_wordnet("meteor-no-wordnet");
  write_empty_wordnet(empty_wordnet.path());
  size_t cases = 0, failures = 0, between = 0, synonym_cases = 0;
  for (const Json& variant : ref.at("variants")) {
    MeteorOptions options;
    options.alpha = variant.at("alpha"), options.beta = variant.at("beta"), options.gamma = variant.at("gamma");
    MeteorOptions no_synonyms = options;
    no_synonyms.wordnet_dir = empty_wordnet.path().string();
    std::vector<std::string> hyps;
    std::vector<std::vector<std::string>> refs;
    for (const Json& c : variant.at("cases")) {
      hyps.push_back(c.at("hyp"));
      refs.push_back(c.at("refs"));
      const double expected = c.at("score");
      const double got = meteor_score(refs.back(), hyps.back(), options);
      ++cases;
      between += expected > 0.0 && expected < 1.0;
      synonym_cases += meteor_score(refs.back(), hyps.back(), no_synonyms) != got;
      if (!(std::abs(got - expected) <= kTolerance) && ++failures <= 20) {
        ADD_FAILURE() << variant.at("name").get<std::string>() << ": hyp " << c.at("hyp").dump() << "\n  refs "
                      << c.at("refs").dump() << fmt::format("\n  C++ {:.17g}  NLTK {:.17g}", got, expected);
      }
    }
    const double corpus = corpus_meteor(refs, hyps, options);
    EXPECT_NEAR(corpus, variant.at("corpus").get<double>(), kTolerance) << variant.at("name");
  }
  EXPECT_EQ(failures, 0u) << "of " << cases << " pairs";
  EXPECT_GE(cases, 500u);
  EXPECT_GT(between, cases / 3);  // scores spread over (0, 1), not only 0 and 1
  EXPECT_GE(synonym_cases, 5u);   // the WordNet stage decides some scores
  std::cout << cases << " pairs, " << between << " in (0, 1), " << synonym_cases << " changed by WordNet synonyms\n";
}

TEST(Meteor, HandComputedAlignments) {
  // Reordered halves: 4 matches in 2 chunks, P = R = 1: 1 - 0.5 * (2/4)^3.
  EXPECT_DOUBLE_EQ(meteor_score({"sat down the cat"}, "the cat sat down"), 15.0 / 16.0);
  // A repeated word goes to the reference's last free copy: 5 chunks of 6 matches.
  EXPECT_DOUBLE_EQ(meteor_score({"on the mat the cat sat"}, "the cat sat on the mat"),
                   1 - 0.5 * std::pow(5.0 / 6.0, 3.0));
  // Identical, after lowercasing: one chunk of 3.
  EXPECT_DOUBLE_EQ(meteor_score({"the quick fox"}, "The QUICK Fox"), 1 - 0.5 / 27.0);
  // Stems: "cats"/"cat", "running"/"run".
  EXPECT_DOUBLE_EQ(meteor_score({"cat run"}, "cats running"), 1 - 0.5 / 8.0);
  // Synonym: "car" and "auto" share a synset; one match, one chunk: 1 - 0.5.
  EXPECT_DOUBLE_EQ(meteor_score({"auto"}, "car"), 0.5);
  // Precision 2/3, recall 1, one chunk of 2.
  const double p = 2.0 / 3.0, fmean = p / (0.9 * p + (1 - 0.9) * 1.0);
  EXPECT_DOUBLE_EQ(meteor_score({"a b"}, "a b c"), (1 - 0.5 / 8.0) * fmean);
  // The best reference wins.
  EXPECT_DOUBLE_EQ(meteor_score({"x y", "auto", "z"}, "car"), 0.5);
  // Other weights: the plain harmonic mean, no penalty.
  MeteorOptions harmonic;
  harmonic.alpha = 0.5, harmonic.beta = 1.0, harmonic.gamma = 0.0;
  EXPECT_DOUBLE_EQ(meteor_score({"a b"}, "a b c", harmonic), 0.8);
}

TEST(Meteor, NoMatchOrAnEmptySideScoresZero) {
  EXPECT_EQ(meteor_score({"this is a cat"}, "non matching hypothesis"), 0.0);
  EXPECT_EQ(meteor_score({"a cat"}, ""), 0.0);
  EXPECT_EQ(meteor_score({" \t"}, "a cat"), 0.0);
  EXPECT_EQ(meteor_score({""}, ""), 0.0);
}

TEST(Meteor, CorpusIsTheMeanOfSentenceScores) {
  const std::vector<std::vector<std::string>> refs = {{"sat down the cat"}, {"auto"}, {"x"}};
  const std::vector<std::string> hyps = {"the cat sat down", "car", "y"};
  EXPECT_DOUBLE_EQ(corpus_meteor(refs, hyps), (15.0 / 16.0 + 0.5 + 0.0) / 3.0);
}

TEST(Meteor, ErrorsAreDataErrors) {
  EXPECT_THROW(meteor_score({}, "a"), DataError);
  EXPECT_THROW(corpus_meteor({{"a"}}, {"a", "b"}), DataError);
  EXPECT_THROW(corpus_meteor({}, {}), DataError);
  EXPECT_THROW(meteor_score({"a"}, "\xff"), DataError);
  try {
    MeteorOptions missing;
    missing.wordnet_dir = "/nonexistent/wordnet";
    meteor_score({"a"}, "a", missing);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("wordnet-base"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::metrics
