// Hand-computed values for the programmatic rewards: lexicon sentiment (on a small lexicon written by the test
// and on the shipped AFINN-165 copy), length/format and target-pattern rewards, and the config factory.
#include "rlhf/reward_functions.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::rlhf {
namespace {

RewardSample text(const std::string& s) {
  RewardSample r;
  r.response_text = s;
  return r;
}

RewardSample tokens(std::vector<int64_t> ids, bool eos = false) {
  RewardSample r;
  r.response = std::move(ids);
  r.ended_with_eos = eos;
  return r;
}

const char* kLexicon =
    "good\t3\n"
    "bad\t-3\n"
    "not good\t-2\n"
    "can't stand\t-3\n"
    "well-being\t2\n"
    "happy\t+2\n"
    "na\xc3\xafve\t-2\n"  // naïve
    "\n"
    "meh\t0\r\n";

std::string expect_data_error(const std::string& lexicon_text) {
  testing::ScratchDir dir;
  const auto path = dir / "lex.tsv";
  testing::write_file(path, lexicon_text);
  try {
    LexiconSentimentReward reward(path.string());
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DataError for:\n" << lexicon_text;
  return "";
}

TEST(LexiconSentimentReward, SplitsWordsAsDocumented) {
  using W = std::vector<std::string>;
  EXPECT_EQ(LexiconSentimentReward::split_words("Good, GOOD... bad!"), (W{"good", "good", "bad"}));
  EXPECT_EQ(LexiconSentimentReward::split_words("I can't stand 'it'"), (W{"i", "can't", "stand", "it"}));
  EXPECT_EQ(LexiconSentimentReward::split_words("well-being -- x- gr8 n00b"), (W{"well-being", "x", "gr8", "n00b"}));
  EXPECT_EQ(LexiconSentimentReward::split_words("Na\xc3\xafve"), (W{"na\xc3\xafve"}));
  EXPECT_TRUE(LexiconSentimentReward::split_words(" ... 42? ").size() == 1);  // "42"
  EXPECT_TRUE(LexiconSentimentReward::split_words("").empty());
}

TEST(LexiconSentimentReward, MeanValencePerWord) {
  testing::ScratchDir dir;
  testing::write_file(dir / "lex.tsv", kLexicon);
  const LexiconSentimentReward reward((dir / "lex.tsv").string());
  EXPECT_EQ(reward.size(), 8u);
  EXPECT_EQ(reward.name(), "lexicon");
  EXPECT_DOUBLE_EQ(reward.score(text("Good, good... BAD!")), 1.0);     // (3 + 3 − 3) / 3
  EXPECT_DOUBLE_EQ(reward.score(text("not good at all")), -0.5);       // phrase −2 over 4 words
  EXPECT_DOUBLE_EQ(reward.score(text("I can't stand it")), -0.75);     // phrase −3 over 4 words
  EXPECT_DOUBLE_EQ(reward.score(text("Well-being matters")), 1.0);     // 2 / 2
  EXPECT_DOUBLE_EQ(reward.score(text("ultra-happy day")), 2.0 / 3.0);  // ultra, happy (+2), day
  EXPECT_DOUBLE_EQ(reward.score(text("it's GOOD")), 1.5);              // 3 / 2
  EXPECT_DOUBLE_EQ(reward.score(text("'good'")), 3.0);                 // quotes are not part of the word
  EXPECT_DOUBLE_EQ(reward.score(text("NA\xc3\xafVE")), -2.0);          // ASCII lower-casing only
  EXPECT_DOUBLE_EQ(reward.score(text("")), 0.0);
  EXPECT_DOUBLE_EQ(reward.score(text("!!!")), 0.0);
  EXPECT_DOUBLE_EQ(reward.score(text("meh meh")), 0.0);
  const auto batch = reward.score_batch({text("good"), text("bad bad"), text("happy x y z")});
  EXPECT_EQ(batch, (std::vector<double>{3.0, -3.0, 0.5}));
}

TEST(LexiconSentimentReward, MalformedLinesNameFileAndLine) {
  std::string e = expect_data_error("good\t3\nbad -3\n");  // no tab
  EXPECT_NE(e.find("lex.tsv:2:"), std::string::npos) << e;
  e = expect_data_error("good\t3\n\nok\tthree\n");  // non-integer score
  EXPECT_NE(e.find("lex.tsv:3:"), std::string::npos) << e;
  e = expect_data_error("good\t3\ngood\t2\n");  // duplicate
  EXPECT_NE(e.find("lex.tsv:2:"), std::string::npos) << e;
  e = expect_data_error("good\t1.5\n");
  EXPECT_NE(e.find("lex.tsv:1:"), std::string::npos) << e;
  e = expect_data_error("good\t3\tx\n");
  EXPECT_NE(e.find("lex.tsv:1:"), std::string::npos) << e;
  e = expect_data_error(":)\t2\n");  // no word characters: could never match
  EXPECT_NE(e.find("lex.tsv:1:"), std::string::npos) << e;
  EXPECT_THROW(LexiconSentimentReward("/nonexistent/lexicon.tsv"), IoError);
}

TEST(LexiconSentimentReward, LoadsAfinn165) {
  const LexiconSentimentReward reward((testing::source_dir() / "tests/fixtures/lexicons/afinn165.tsv").string());
  EXPECT_EQ(reward.size(), 3382u);  // every line, multi-word and hyphenated entries included
  EXPECT_DOUBLE_EQ(reward.score(text("I love this great movie")), 1.2);    // love 3, great 3 over 5 words
  EXPECT_DOUBLE_EQ(reward.score(text("This movie was not good.")), -0.4);  // "not good" −2 over 5 words
  EXPECT_DOUBLE_EQ(reward.score(text("Terrible!")), -3.0);
}

TEST(LengthFormatReward, DistanceFromTargetPlusEosBonus) {
  const LengthFormatReward reward(4, 0.5);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3, 4, 5, 6}, true)), 0.0);  // −2/4 + 0.5
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3, 4}, false)), 0.0);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3, 4}, true)), 0.5);
  EXPECT_DOUBLE_EQ(reward.score(tokens({}, false)), -1.0);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3, 4, 5, 6, 7, 8}, true)), -0.5);  // −1 + 0.5
  EXPECT_DOUBLE_EQ(reward.score(tokens({1}, false)), -0.75);
  EXPECT_THROW(LengthFormatReward(0, 0.0), ConfigError);
}

TEST(TargetPatternReward, FractionOfMatchingPositions) {
  const TargetPatternReward reward({1, 2, 3});
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3})), 1.0);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 5, 3})), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2})), 2.0 / 3.0);  // missing position counts as wrong
  EXPECT_DOUBLE_EQ(reward.score(tokens({3, 2, 1})), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(reward.score(tokens({1, 2, 3, 9, 9})), 1.0);  // tokens past the target are ignored
  EXPECT_DOUBLE_EQ(reward.score(tokens({})), 0.0);
  EXPECT_THROW(TargetPatternReward({}), ConfigError);
}

void validate_reward(const RewardFunctionConfig& c) {
  core::OriginMap origins;
  core::ConfigValidator v(origins, "reward");
  c.validate(v);
}

TEST(RewardFunctionConfig, ValidateAndMake) {
  RewardFunctionConfig c;
  EXPECT_THROW(validate_reward(c), ConfigError);  // no type
  c.type = RewardFunctionType::kLength;
  c.target_length = 4;
  c.eos_bonus = 0.5;
  EXPECT_NO_THROW(validate_reward(c));
  auto length = make_reward_function(c);
  EXPECT_EQ(length->name(), "length");
  EXPECT_DOUBLE_EQ(length->score(tokens({1, 2}, true)), 0.0);  // −2/4 + 0.5

  c.type = RewardFunctionType::kPattern;
  EXPECT_THROW(validate_reward(c), ConfigError);  // empty pattern
  c.pattern = {7, -1};
  EXPECT_THROW(validate_reward(c), ConfigError);  // negative id
  c.pattern = {7, 8};
  EXPECT_NO_THROW(validate_reward(c));
  EXPECT_DOUBLE_EQ(make_reward_function(c)->score(tokens({7, 0})), 0.5);

  c.type = RewardFunctionType::kLexicon;
  try {
    validate_reward(c);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("reward.lexicon"), std::string::npos) << e.what();
  }
  testing::ScratchDir dir;
  testing::write_file(dir / "lex.tsv", kLexicon);
  c.lexicon = (dir / "lex.tsv").string();
  EXPECT_NO_THROW(validate_reward(c));
  EXPECT_DOUBLE_EQ(make_reward_function(c)->score(text("good bad good")), 1.0);

  c.type.reset();  // no type: an error naming reward.type and the choices
  try {
    validate_reward(c);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lexicon, length, pattern, answer or format"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_reward_function(c), ConfigError);
}

}  // namespace
}  // namespace troupe::rlhf
