// dataprep/quality.h: the Gopher filters against datatrove 0.10.1 (tests/dataprep/quality_reference.py run in the
// test: the same words, keep/drop decision and reason on 1500 seeded documents), and each rule on both sides of
// its default threshold on hand-built documents, the other rules switched off where they would fire first.
#include "dataprep/quality.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

TEST(Gopher, SameWordsAndReasonsAsDatatrove) {
  testing::ScratchDir dir("troupe-gopher");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/quality_reference.py").string(), out.string()},
      std::chrono::seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto docs = nlohmann::json::parse(testing::read_file(out))["docs"];
  ASSERT_EQ(docs.size(), 1500u);
  size_t mismatches = 0;
  std::map<std::string, int> quality_reasons, repetition_reasons;
  for (const auto& doc : docs) {
    const std::string text = doc["text"];
    const auto words = split_words(text);
    const auto q = gopher_quality(text), rep = gopher_repetition(text);
    ++quality_reasons[q.reason];
    ++repetition_reasons[rep.reason];
    const bool same = words == doc["words"].get<std::vector<std::string>>() && q.reason == doc["quality"] &&
                      rep.reason == doc["repetition"] && q.keep == q.reason.empty() && rep.keep == rep.reason.empty();
    if (!same && ++mismatches <= 5) {
      const auto want = doc["words"].get<std::vector<std::string>>();
      size_t i = 0;
      while (i < words.size() && i < want.size() && words[i] == want[i]) ++i;
      const auto around = [&](const std::vector<std::string>& w) {
        return nlohmann::json(
            std::vector<std::string>(w.begin() + std::min(i, w.size()), w.begin() + std::min(i + 4, w.size())));
      };
      ADD_FAILURE() << "words differ at " << i << ": " << around(words) << " vs datatrove's " << around(want)
                    << "; quality '" << q.reason << "' vs '" << doc["quality"].get<std::string>() << "', repetition '"
                    << rep.reason << "' vs '" << doc["repetition"].get<std::string>() << "'";
    }
  }
  EXPECT_EQ(mismatches, 0u);
  // the corpus reaches every rule but the two the hand cases cover (long documents, "..." per word)
  EXPECT_EQ(quality_reasons.size(), 9u);
  EXPECT_EQ(repetition_reasons.size(), 14u);
}

TEST(SplitWords, SpacyCasesByHand) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_words("(#tag, ok...)"), (V{"(", "#", "tag", ",", "ok", "...", ")"}));
  EXPECT_EQ(split_words("well-known 3-4 a--b x- -z •b"),
            (V{"well", "-", "known", "3", "-", "4", "a", "--", "b", "x-", "-z",
               "\xe2\x80\xa2"
               "b"}));
  EXPECT_EQ(split_words("A. ok. end\xe2\x80\xa6 \xe2\x80\x9cq\xe2\x80\x9d"),
            (V{"A.", "ok", ".", "end", "\xe2\x80\xa6", "\xe2\x80\x9c", "q", "\xe2\x80\x9d"}));
}

// `n` copies of `w` separated by spaces
std::string words(int n, const std::string& w) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? " " : "") + w;
  return s;
}

// "the and" + 48 more words: 50 non-symbol words, two stop words
std::string doc(const std::string& filler) { return "the and " + words(48, filler); }

TEST(GopherQuality, EachRuleOnBothSidesOfItsThreshold) {
  EXPECT_TRUE(gopher_quality(doc("word")).keep);  // 50 words, mean (6+192)/50 = 3.96
  EXPECT_EQ(gopher_quality("the and " + words(47, "word")).reason, "gopher_short_doc");  // 49 < 50
  EXPECT_EQ(gopher_quality("the and " + words(99998, "word")).reason, "");               // 100000 words
  EXPECT_EQ(gopher_quality("the and " + words(99999, "word")).reason, "gopher_long_doc");
  EXPECT_EQ(gopher_quality(doc("ab")).reason, "gopher_below_avg_threshold");           // (6+96)/50 = 2.04 < 3
  EXPECT_TRUE(gopher_quality(doc("abc")).keep);                                        // (6+144)/50 = 3.0
  EXPECT_EQ(gopher_quality(doc("abcdefghijk")).reason, "gopher_above_avg_threshold");  // (6+528)/50 = 10.68 > 10
  EXPECT_TRUE(gopher_quality(doc("abcdefghij")).keep);                                 // (6+480)/50 = 9.72
  // k "#word" add k "#" tokens: k / (50 + k) > 0.1 from k = 6 (6/56 = 0.107; 5/55 = 0.091)
  EXPECT_EQ(gopher_quality("the and " + words(42, "word") + " " + words(6, "#word")).reason, "gopher_too_many_hashes");
  EXPECT_TRUE(gopher_quality("the and " + words(43, "word") + " " + words(5, "#word")).keep);
  EXPECT_EQ(gopher_quality("the and " + words(42, "word") + " " + words(6, "word...") + " end").reason,
            "gopher_too_many_ellipsis");  // 6 / (51 + 6) = 0.105
  EXPECT_TRUE(gopher_quality("the and " + words(43, "word") + " " + words(5, "word\xe2\x80\xa6") + " end").keep);
  // 10 lines of 5 words: bullets on 10/10 > 0.9 drop, 9/10 keep; "..." ends on 4/10 > 0.3 drop, 3/10 keep
  std::string bullets, nine_bullets, ends4, ends3;
  for (int i = 0; i < 10; ++i) {
    const std::string line = "the and word word word";
    bullets += (i ? "\n" : "") + std::string(i % 2 ? "- " : "  \xe2\x80\xa2 ") + line;
    nine_bullets += (i ? "\n" : "") + std::string(i ? "- " : "") + line;
    ends4 += (i ? "\n" : "") + line + (i < 4 ? "... " : "");
    ends3 += (i ? "\n" : "") + line + (i < 3 ? "\xe2\x80\xa6" : "");
  }
  EXPECT_EQ(gopher_quality(bullets).reason, "gopher_too_many_bullets");
  EXPECT_TRUE(gopher_quality(nine_bullets).keep);
  EXPECT_EQ(gopher_quality(ends4).reason, "gopher_too_many_end_ellipsis");
  EXPECT_TRUE(gopher_quality(ends3).keep);
  // words with a letter: 39/50 = 0.78 < 0.8 drop, 40/50 keep
  EXPECT_EQ(gopher_quality("the and " + words(37, "word") + " " + words(11, "123")).reason,
            "gopher_below_alpha_threshold");
  EXPECT_TRUE(gopher_quality("the and " + words(38, "word") + " " + words(10, "123")).keep);
  EXPECT_EQ(gopher_quality("the the " + words(48, "word")).reason, "gopher_enough_stop_words");  // 1 distinct
  EXPECT_EQ(gopher_quality("The And " + words(48, "word")).reason, "gopher_enough_stop_words");  // case-sensitive
  GopherQualityConfig off;
  off.min_stop_words = 0;
  EXPECT_TRUE(gopher_quality("The And " + words(48, "word"), off).keep);
}

// `n` distinct 5-letter words ("kaaaa", "kaaab", ...) starting at index `from`
std::string unique(int n, int from) {
  std::string s;
  for (int i = from; i < from + n; ++i) {
    std::string w = "k";
    for (int k = 3, v = i; k >= 0; --k, v /= 26) w.insert(1, 1, static_cast<char>('a' + v % 26));
    s += (i > from ? " " : "") + w;
  }
  return s;
}

GopherRepetitionConfig only(std::vector<std::pair<int, double>> top, std::vector<std::pair<int, double>> dup) {
  GopherRepetitionConfig c;
  c.top_n_grams = std::move(top);
  c.dup_n_grams = std::move(dup);
  return c;
}

TEST(GopherRepetition, EachRuleOnBothSidesOfItsThreshold) {
  EXPECT_EQ(gopher_repetition("").reason, "empty");
  // 6 unique paragraphs + "q" k times: k-1 duplicates of 5+k paragraphs: 3/10 keep, 4/11 > 0.3 drop
  std::string paras;
  for (int i = 0; i < 6; ++i) paras += unique(20, 20 * i) + "\n\n";
  EXPECT_TRUE(gopher_repetition(paras + "q\n\nq\n\nq\n\nq").keep);
  EXPECT_EQ(gopher_repetition(paras + "q\n\nq\n\nq\n\nq\n\nq").reason, "dup_para_frac");
  // the same with single newlines: one paragraph, 4/11 duplicate lines
  std::string lines;
  for (int i = 0; i < 6; ++i) lines += unique(20, 20 * i) + "\n";
  EXPECT_TRUE(gopher_repetition(lines + "q\nq\nq\nq").keep);
  EXPECT_EQ(gopher_repetition(lines + "q\nq\nq\nq\nq").reason, "dup_line_frac");
  // paragraph U (k0 words, 6*k0-1 chars) twice among 6 of 20 words: (6k0-1)/(12k0+726) is 239/1206 = 0.198 for
  // k0 = 40, 359/1446 = 0.248 for k0 = 60; n-gram rules off (the repeated paragraph repeats its n-grams)
  const auto char_frac = [&](int k0, const std::string& sep) {
    std::string t = unique(k0, 1000);
    for (int i = 0; i < 6; ++i) t += sep + unique(20, 20 * i);
    return gopher_repetition(t + sep + unique(k0, 1000), only({}, {})).reason;
  };
  EXPECT_EQ(char_frac(40, "\n\n"), "");
  EXPECT_EQ(char_frac(60, "\n\n"), "dup_para_char_frac");
  EXPECT_EQ(char_frac(40, "\n"), "");  // lines: 2 - 6 newlines fewer, (6k0-1)/(12k0+720)
  EXPECT_EQ(char_frac(60, "\n"), "dup_line_char_frac");
  // "ab cd" k times after 20 unique words: 5k / (119 + 6k) is 30/155 = 0.194 for k = 6, 35/161 = 0.217 for k = 7
  const auto top2 = [&](int k) {
    return gopher_repetition(unique(20, 0) + " " + words(k, "ab cd"), only({{2, 0.2}}, {}));
  };
  EXPECT_TRUE(top2(6).keep);
  EXPECT_EQ(top2(7).reason, "top_2_gram");
  // 5 words twice, then k unique: the second copy is one repeated 5-gram of 25 chars; 25 / (59 + 6k) is
  // 25/161 = 0.155 for k = 17, 25/167 = 0.150 for k = 18
  const auto dup5 = [&](int k) {
    return gopher_repetition(unique(5, 500) + " " + unique(5, 500) + " " + unique(k, 0), only({}, {{5, 0.15}}));
  };
  EXPECT_EQ(dup5(17).reason, "duplicated_5_n_grams");
  EXPECT_TRUE(dup5(18).keep);
  // defaults: the same documents meet the n-gram rules (the repeated 40-word paragraph repeats its 5-grams)
  EXPECT_EQ(gopher_repetition(unique(40, 1000) + "\n\n" + unique(40, 1000)).reason, "dup_para_frac");
}

TEST(GopherConfig, ValidateRejectsBadThresholds) {
  GopherQualityConfig q;
  q.validate();
  q.min_avg_word_length = 12;
  EXPECT_THROW(q.validate(), ConfigError);
  GopherRepetitionConfig r;
  r.validate();
  r.dup_n_grams.push_back({0, 0.1});
  EXPECT_THROW(r.validate(), ConfigError);
}

}  // namespace
}  // namespace troupe::dataprep
