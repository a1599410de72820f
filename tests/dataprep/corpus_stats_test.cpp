// dataprep/corpus_stats.h: a four-document corpus with every number worked out by hand (lengths, log2 bins,
// vocabulary, top words, gendered counts and ratios), and the vocabulary of 400 seeded documents against Python's
// collections.Counter (tests/dataprep/corpus_stats_reference.py run in the test).
#include "dataprep/corpus_stats.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

using V = std::vector<std::string>;
using Hist = std::array<int64_t, kHistogramBins>;

Hist hist(std::initializer_list<std::pair<int, int64_t>> bins) {
  Hist h{};
  for (const auto& [i, n] : bins) h[i] = n;
  return h;
}

TEST(CorpusStats, Log2BinsByHand) {
  EXPECT_EQ(log2_bin(0), 0);
  EXPECT_EQ(log2_bin(1), 1);
  EXPECT_EQ(log2_bin(2), 2);
  EXPECT_EQ(log2_bin(3), 2);
  EXPECT_EQ(log2_bin(4), 3);
  EXPECT_EQ(log2_bin(7), 3);
  EXPECT_EQ(log2_bin((int64_t{1} << 30) - 1), 30);
  EXPECT_EQ(log2_bin(int64_t{1} << 30), 31);
  EXPECT_EQ(log2_bin(int64_t{1} << 40), 31);
  EXPECT_THROW(log2_bin(-1), DataError);
}

TEST(CorpusStats, WordsByHand) {
  EXPECT_EQ(corpus_words("The cat's (HAT)! -- \xc3\x9c"
                         "ber"),
            (V{"the", "cat's", "hat",
               "\xc3\xbc"
               "ber"}));
  EXPECT_EQ(corpus_words(" \xe2\x80\x94 "), V{"\xe2\x80\x94"});  // an em dash is not string.punctuation
  EXPECT_THROW(corpus_words("\xff"), DataError);
}

TEST(CorpusStats, SmallCorpusByHand) {
  CorpusStatsBuilder b(3);
  b.add("He said: he, his dog, HIS cat.");  // 30 chars, 7 words, 1 line
  b.add("She and her mother.\nThe man\n");  // 28 chars, 6 words, 2 lines
  b.add("");                                // 0, 0, 0
  b.add(
      "a\n\nb \xe2\x80\x94 \xc3\x9c"
      "ber");  // a \n \n b _ — _ Ü b e r: 11 chars, 4 words, 3 lines
  const auto s = b.finish();
  EXPECT_EQ(s.documents, 4);

  EXPECT_EQ(s.chars.total, 69);
  EXPECT_EQ(s.chars.min, 0);
  EXPECT_EQ(s.chars.max, 30);
  EXPECT_DOUBLE_EQ(s.chars.mean, 17.25);
  EXPECT_EQ(s.chars.histogram, hist({{0, 1}, {4, 1}, {5, 2}}));  // 0 | 11 in [8, 16) | 28, 30 in [16, 32)

  EXPECT_EQ(s.words.total, 17);
  EXPECT_EQ(s.words.min, 0);
  EXPECT_EQ(s.words.max, 7);
  EXPECT_DOUBLE_EQ(s.words.mean, 4.25);
  EXPECT_EQ(s.words.histogram, hist({{0, 1}, {3, 3}}));  // 0 | 4, 6, 7 in [4, 8)

  EXPECT_EQ(s.lines.total, 6);
  EXPECT_EQ(s.lines.max, 3);
  EXPECT_DOUBLE_EQ(s.lines.mean, 1.5);
  EXPECT_EQ(s.lines.histogram, hist({{0, 1}, {1, 1}, {2, 2}}));  // 0 | 1 | 2, 3

  // he 2, his 2, said dog cat she and her mother the man a b — über 1 each
  EXPECT_EQ(s.vocab_tokens, 17);
  EXPECT_EQ(s.vocab_size, 15);
  EXPECT_EQ(s.top_words, (std::vector<std::pair<std::string, int64_t>>{{"he", 2}, {"his", 2}, {"a", 1}}));

  EXPECT_EQ(s.gender.male.at("he"), 2);
  EXPECT_EQ(s.gender.male.at("his"), 2);
  EXPECT_EQ(s.gender.male.at("man"), 1);
  EXPECT_EQ(s.gender.male.at("boy"), 0);
  EXPECT_EQ(s.gender.male.size(), kMaleWords.size());
  EXPECT_EQ(s.gender.male_total, 5);
  EXPECT_EQ(s.gender.female.at("she"), 1);
  EXPECT_EQ(s.gender.female.at("her"), 1);
  EXPECT_EQ(s.gender.female.at("mother"), 1);
  EXPECT_EQ(s.gender.female_total, 3);
  EXPECT_DOUBLE_EQ(*s.gender.he_she_ratio, 2.0);
  EXPECT_DOUBLE_EQ(*s.gender.male_female_ratio, 5.0 / 3.0);

  const auto log = format_corpus_stats(s);
  EXPECT_NE(log.find("chars [16, 32): 2\n"), std::string::npos) << log;
  EXPECT_NE(log.find("words [0, 1): 1\n"), std::string::npos) << log;
  EXPECT_NE(log.find("male_total 5 female_total 3 he_she_ratio 2.0000 male_female_ratio 1.6667\n"), std::string::npos)
      << log;
}

TEST(CorpusStats, EmptyCorpusAndNoFemaleWords) {
  auto s = CorpusStatsBuilder().finish();
  EXPECT_EQ(s.documents, 0);
  EXPECT_EQ(s.chars.mean, 0);
  EXPECT_FALSE(s.gender.he_she_ratio.has_value());
  CorpusStatsBuilder b;
  b.add("he he");
  s = b.finish();
  EXPECT_FALSE(s.gender.he_she_ratio.has_value());
  EXPECT_FALSE(s.gender.male_female_ratio.has_value());
  EXPECT_EQ(s.gender.male_total, 2);
  EXPECT_THROW(CorpusStatsBuilder(-1), ConfigError);
}

TEST(CorpusStats, VocabularyEqualsPythonCounter) {
  testing::ScratchDir dir("troupe-corpus-stats");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/corpus_stats_reference.py").string(), out.string()},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(testing::read_file(out));
  CorpusStatsBuilder b(1 << 20);  // top_k above the vocabulary size: the whole sorted vocabulary
  for (const auto& d : ref["docs"]) b.add(d.get<std::string>());
  const auto s = b.finish();
  const auto want = ref["vocab"].get<std::vector<std::pair<std::string, int64_t>>>();
  EXPECT_GT(want.size(), 50u);
  EXPECT_EQ(s.top_words, want);
  EXPECT_EQ(s.vocab_size, static_cast<int64_t>(want.size()));
  EXPECT_EQ(s.chars.total, ref["chars"].get<int64_t>());
  EXPECT_EQ(s.words.total, ref["words"].get<int64_t>());
  EXPECT_EQ(s.lines.total, ref["lines"].get<int64_t>());
  int64_t he = 0, she = 0;
  for (const auto& [w, c] : want) {
    he += w == "he" ? c : 0;
    she += w == "she" ? c : 0;
  }
  ASSERT_GT(she, 0);
  EXPECT_DOUBLE_EQ(*s.gender.he_she_ratio, static_cast<double>(he) / static_cast<double>(she));
}

}  // namespace
}  // namespace troupe::dataprep
