// metrics/toxicity.h: the lexicon loader (TSV with a score threshold, plain word list, malformed lines, the AFINN-165
// default) and the toxicity rate on hand-made texts (whole lower-cased words only).
#include "metrics/toxicity.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

TEST(Toxicity, RateOverWholeLowercasedWordsOfTheLexicon) {
  testing::ScratchDir dir("troupe-toxicity");
  testing::write_file(dir / "lex.tsv", "hell\t-4\nbad\t-3\ndamn\t-4\nwell-known\t-5\n");
  const auto lex = load_toxicity_lexicon((dir / "lex.tsv").string(), -4);
  EXPECT_EQ(lex, (std::set<std::string>{"hell", "damn", "well-known"}));
  const auto r =
      toxicity_rate({"What the HELL.", "a shell and hello", "bad day", "", "Damn's", "a well-known fact", "damn"}, lex);
  EXPECT_EQ(r.flags, (std::vector<bool>{true, false, false, false, false, true, true}));
  EXPECT_EQ(r.matched[0], "hell");
  EXPECT_NEAR(r.rate, 3.0 / 7, 1e-15);
  testing::write_file(dir / "list.txt", "Foo\n# comment\nbar\n");
  EXPECT_EQ(load_toxicity_lexicon((dir / "list.txt").string()), (std::set<std::string>{"foo", "bar"}));
  testing::write_file(dir / "bad.tsv", "foo\tx\n");
  EXPECT_THROW(load_toxicity_lexicon((dir / "bad.tsv").string()), DataError);
  // The AFINN-165 default: its strongest negative words.
  const auto afinn = load_toxicity_lexicon((testing::source_dir() / "tests/fixtures/lexicons/afinn165.tsv").string());
  EXPECT_EQ(afinn.size(), 63u);
  EXPECT_TRUE(afinn.count("bastard"));
  EXPECT_FALSE(afinn.count("bad"));
}

TEST(Toxicity, FirstToxicWordIsTheFirstLexiconWordInTextOrder) {
  const std::set<std::string> lex = {"hell", "damn"};
  EXPECT_EQ(first_toxic_word("damn it to HELL", lex), "damn");
  EXPECT_EQ(first_toxic_word("hell, damn", lex), "hell");
  EXPECT_EQ(first_toxic_word("shell-shocked hellos", lex), "");
  EXPECT_EQ(first_toxic_word("", lex), "");
}

}  // namespace
}  // namespace troupe::metrics
