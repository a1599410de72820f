// dataprep/decontam.h: the normalisation and n-grams against lm-eval 0.4.13's Janitor (tests/dataprep/
// decontam_reference.py run in the test: 300 seeded texts with Unicode letters, punctuation and whitespace), a planted
// corpus (13 shared words caught through case and punctuation changes, 12 not, the Janitor agreeing on every
// document), and hand cases for min_matches, the report and the one place we differ from Janitor.clean_python.
#include "dataprep/decontam.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

using V = std::vector<std::string>;

nlohmann::json run_reference() {
  testing::ScratchDir dir("troupe-decontam");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/decontam_reference.py").string(), out.string()},
      std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(testing::read_file(out));
}

TEST(Decontam, NormalisationAndNgramsEqualTheJanitors) {
  static const auto ref = run_reference();
  ASSERT_EQ(ref["texts"].size(), 300u);
  size_t nonempty13 = 0;
  for (const auto& t : ref["texts"]) {
    const std::string text = t["text"];
    const auto normal = janitor_normalize(text);
    ASSERT_EQ(normal, t["normal"].get<std::string>()) << text;
    EXPECT_EQ(word_ngrams(normal, 13), t["ngrams13"].get<V>()) << text;
    EXPECT_EQ(word_ngrams(normal, 3), t["ngrams3"].get<V>()) << text;
    nonempty13 += !t["ngrams13"].empty();
  }
  EXPECT_GT(nonempty13, 100u);  // the texts reach n-grams of 13, not only short ones

  DecontamIndex index;
  for (const auto& e : ref["evals"]) index.add(e["id"], e["text"].get<std::string>());
  EXPECT_EQ(index.size(), ref["dirt_ngrams"].get<size_t>());  // the same set of n-grams as Janitor.dirt_ngrams
  EXPECT_EQ(index.short_texts(), 0u);
  std::map<std::string, int> caught;
  for (const auto& d : ref["docs"]) {
    const std::string kind = d["kind"];
    const auto report = index.check(d["text"].get<std::string>());
    EXPECT_EQ(report.contaminated, kind == "planted") << kind << ": " << d["text"];
    EXPECT_EQ(report.contaminated, d["janitor_contaminated"].get<bool>()) << d["text"];
    if (kind == "planted") {
      EXPECT_NE(std::find(report.eval_ids.begin(), report.eval_ids.end(), d["eval_id"]), report.eval_ids.end());
      EXPECT_EQ(report.matched.size(), 1u);  // exactly one 13-gram: the 13 planted words
    }
    caught[kind] += report.contaminated;
  }
  EXPECT_EQ(caught["planted"], 100);
  EXPECT_EQ(caught["near"], 0);
  EXPECT_EQ(caught["clean"], 0);
}

TEST(Decontam, NormaliseAndNgramsByHand) {
  EXPECT_EQ(janitor_normalize("Don't STOP -- \xc3\x9c"
                              "ber!"),
            "dont stop  \xc3\x9c"
            "ber");  // Ü stays upper
  EXPECT_EQ(janitor_normalize("a\xe2\x80\x94"
                              "b \xe2\x80\x99x"),
            "a\xe2\x80\x94"
            "b \xe2\x80\x99x");  // — ’ kept
  EXPECT_EQ(word_ngrams("a  b c", 2), (V{"a b", "b c"}));
  EXPECT_EQ(word_ngrams("a b", 3), V{});
  EXPECT_EQ(word_ngrams("a\xc2\xa0"
                        "b\x1c"
                        "c",
                        3),
            V{"a b c"});  // NBSP and \x1c split, as str.split()
  EXPECT_THROW(janitor_normalize("bad \xff"), DataError);
  EXPECT_THROW(word_ngrams("a", 0), ConfigError);
}

TEST(Decontam, MinMatchesAndReport) {
  DecontamIndex index({.n = 3, .min_matches = 2});
  index.add("q1", "The cat sat on the mat.");  // the cat sat / cat sat on / sat on the / on the mat
  index.add("q2", "a dog sat on the rug");     // ... sat on the ...
  index.add("q3", "too short");
  EXPECT_EQ(index.size(), 7u);  // "sat on the" shared
  EXPECT_EQ(index.short_texts(), 1u);

  auto r = index.check("Yes: SAT on THE grass, sat on the grass");  // one distinct n-gram, twice
  EXPECT_FALSE(r.contaminated);
  EXPECT_EQ(r.matched, V{"sat on the"});
  EXPECT_EQ(r.eval_ids, (V{"q1", "q2"}));

  r = index.check("the mat: on the mat, the cat");
  EXPECT_FALSE(r.contaminated);  // of its 3-grams only "on the mat" is indexed
  EXPECT_EQ(r.matched, (V{"on the mat"}));
  r = index.check("so the cat sat on the mat");
  EXPECT_TRUE(r.contaminated);
  EXPECT_EQ(r.matched, (V{"the cat sat", "cat sat on", "sat on the", "on the mat"}));
  EXPECT_EQ(r.eval_ids, (V{"q1", "q2"}));
  EXPECT_FALSE(index.check("").contaminated);
}

TEST(Decontam, StandalonePunctuationDoesNotHideAMatch) {
  // Janitor.clean_python splits the raw document, so "sat -- on" is the 3-gram "sat  on" (two spaces) there and no
  // match; we normalise first, as for the evaluation texts, and catch it.
  DecontamIndex index({.n = 3});
  index.add("q", "the cat sat on the mat");
  EXPECT_TRUE(index.check("the cat sat -- on the mat").contaminated);
  EXPECT_EQ(index.check("the cat sat -- on the mat").matched.size(), 4u);
}

TEST(Decontam, ValidatesConfig) {
  EXPECT_THROW(DecontamIndex({.n = 0}), ConfigError);
  EXPECT_THROW(DecontamIndex({.n = 13, .min_matches = 0}), ConfigError);
}

}  // namespace
}  // namespace troupe::dataprep
