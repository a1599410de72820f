// Hand-computed values for the programmatic rewards: lexicon sentiment (on a small lexicon written by the test
// and on the shipped AFINN-165 copy), length/format and target-pattern rewards, lexicon toxicity, the reference
// text metric (against metrics::compute_text_metric and by hand), and the config factory.
#include "rlhf/reward_functions.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/errors.h"
#include "metrics/text_metrics.h"
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
    EXPECT_NE(std::string(e.what()).find("lexicon, length, pattern, answer, format, toxicity or metric"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_reward_function(c), ConfigError);
}

// The config error of validate() for `c`, or "" when it passes.
std::string config_error(const RewardFunctionConfig& c) {
  try {
    validate_reward(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// −1 for a whole lexicon word in any case, 0 otherwise; TSV words count only at score <= max_score.
TEST(ToxicityReward, MinusOneForALexiconWordElseZero) {
  testing::ScratchDir dir;
  testing::write_file(dir / "tox.tsv", "hell\t-4\nbad\t-3\ndamn\t-5\n");
  RewardFunctionConfig c;
  c.type = RewardFunctionType::kToxicity;
  EXPECT_NE(config_error(c).find("reward.lexicon"), std::string::npos) << config_error(c);
  c.lexicon = (dir / "tox.tsv").string();
  EXPECT_EQ(config_error(c), "");
  const auto f = make_reward_function(c);  // max_score −4: {hell, damn}
  EXPECT_EQ(f->name(), "toxicity");
  EXPECT_EQ(f->score(text("What the HELL.")), -1.0);    // case
  EXPECT_EQ(f->score(text("a shell and hello")), 0.0);  // word boundary: "shell", "hello"
  EXPECT_EQ(f->score(text("Damn, damn")), -1.0);        // once per response, not per word
  EXPECT_EQ(f->score(text("bad day")), 0.0);            // bad scores −3 > −4
  EXPECT_EQ(f->score(text("")), 0.0);
  c.max_score = -3;
  EXPECT_EQ(make_reward_function(c)->score(text("bad day")), -1.0);
  testing::write_file(dir / "list.txt", "Heck\n");  // a plain list: every word, lower-cased
  c.lexicon = (dir / "list.txt").string();
  EXPECT_EQ(make_reward_function(c)->score(text("oh HECK")), -1.0);
}

RewardSample prompted(const std::string& prompt, const std::string& response) {
  RewardSample r;
  r.prompt_text = prompt;
  r.response_text = response;
  return r;
}

// The metric reward is compute_text_metric's per-example value on the prompt's reference (−TER for ter).
TEST(TextMetricReward, IsTheSentenceMetricAgainstThePromptsReference) {
  testing::ScratchDir dir;
  testing::write_file(dir / "p.jsonl",
                      "{\"prompt\": \"Q1\", \"reference\": \"the cat was here\"}\n"
                      "{\"prompt\": \"Q2\", \"reference\": [\"a dog ran in the park\", \"the dog runs\"]}\n");
  RewardFunctionConfig c;
  c.type = RewardFunctionType::kMetric;
  c.metric = "rougeL";
  EXPECT_EQ(config_error(c), "");
  const RewardContext context{{(dir / "p.jsonl").string()}, "prompt", ""};
  // By hand: "the cat sat" vs "the cat was here": LCS "the cat" = 2, P = 2/3, R = 2/4, F = 2PR/(P+R) = 4/7.
  const auto rouge_l = make_reward_function(c, context);
  EXPECT_EQ(rouge_l->name(), "rougeL");
  EXPECT_NEAR(rouge_l->score(prompted("Q1", "the cat sat")), 4.0 / 7.0, 1e-15);
  EXPECT_EQ(rouge_l->score(prompted("Q1", "The cat was here!")), 1.0);
  EXPECT_EQ(rouge_l->score(prompted("Q1", "")), 0.0);
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Q1", "the cat sat"}, {"Q1", "a cat was there"}, {"Q2", "the dog ran in a park"}, {"Q2", "cats"}};
  const std::map<std::string, std::vector<std::string>> refs = {{"Q1", {"the cat was here"}},
                                                                {"Q2", {"a dog ran in the park", "the dog runs"}}};
  for (const std::string metric : {"rouge1", "rouge2", "rougeL", "bleu", "chrf", "exact_match", "ter"}) {
    c.metric = metric;
    const auto f = make_reward_function(c, context);
    for (const auto& [prompt, response] : pairs) {
      const double want = metrics::compute_text_metric(metric, {response}, {refs.at(prompt)}).per_example.at(0) *
                          (metric == "ter" ? -1 : 1);
      EXPECT_EQ(f->score(prompted(prompt, response)), want) << metric << " " << response;
    }
  }
  // A prompt without a reference: an error naming the prompt, never a silent 0.
  try {
    rouge_l->score(prompted("Q3", "x"));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'Q3'"), std::string::npos) << e.what();
  }
  // An unknown metric: a config error naming the key (and the constructor refuses it too).
  c.metric = "rougeX";
  EXPECT_NE(config_error(c).find("reward.metric"), std::string::npos) << config_error(c);
  EXPECT_NE(config_error(c).find("rougeL"), std::string::npos) << config_error(c);
  EXPECT_THROW(TextMetricReward("rougeX", refs), ConfigError);
  // A line without its reference field: a DataError naming file:line.
  testing::write_file(dir / "bad.jsonl", "{\"prompt\": \"Q1\", \"reference\": \"x\"}\n{\"prompt\": \"Q2\"}\n");
  c.metric = "rougeL";
  try {
    make_reward_function(c, RewardContext{{(dir / "bad.jsonl").string()}, "prompt", ""});
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
}

// As for the answer reward: a {"messages"} prompt is keyed by the chat template's render (Zephyr's, by hand), and
// reward.answers and reward.reference_field override where the references come from.
TEST(TextMetricReward, ConversationPromptsAndAnExplicitReferencesFile) {
  testing::ScratchDir dir;
  testing::write_file(dir / "chat.jsonl", R"({"messages": [{"role": "user", "content": "Hi"}], "ref": "hello there"})"
                                          "\n");
  const std::string zephyr = (testing::source_dir() / "tests/fixtures/chat_templates/zephyr_7b_beta.json").string();
  RewardFunctionConfig c;
  c.type = RewardFunctionType::kMetric;
  c.metric = "rouge1";
  c.answers = (dir / "chat.jsonl").string();
  c.reference_field = "ref";
  const auto f = make_reward_function(c, RewardContext{{"/nonexistent/prompts.jsonl"}, "prompt", zephyr});
  EXPECT_NEAR(f->score(prompted("<|user|>\nHi</s>\n<|assistant|>\n", "hello")), 2.0 / 3.0, 1e-15);  // P 1, R 1/2
  EXPECT_THROW(f->score(prompted("Hi", "hello")), DataError);
  EXPECT_THROW(make_reward_function(c), ConfigError);  // messages without prompts.chat_template
}

}  // namespace
}  // namespace troupe::rlhf
