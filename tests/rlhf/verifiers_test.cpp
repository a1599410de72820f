// The verifiable rewards: canonical numbers, answer extraction in the three formats, and the labelled set of tricky
// completions (tests/fixtures/verifier_cases.jsonl: truncated, two answers, answer in the wrong place, extra text,
// ...) on which the answer and format verifiers must have no false positive and no false negative. Also the answer
// reward's reference lookup by prompt text and the weighted sum of several rewards.
#include "rlhf/verifiers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/config_binder.h"
#include "core/errors.h"
#include "data/chat_data.h"
#include "rlhf/reward_functions.h"
#include "tests/support/test_support.h"

namespace troupe::rlhf {
namespace {

TEST(CanonicalNumber, Forms) {
  EXPECT_EQ(canonical_number("82"), "82");
  EXPECT_EQ(canonical_number("+007"), "7");
  EXPECT_EQ(canonical_number("-1,000.50"), "-1000.5");
  EXPECT_EQ(canonical_number("-0.0"), "0");
  EXPECT_EQ(canonical_number(".5"), "0.5");
  EXPECT_EQ(canonical_number("2."), "2");
  EXPECT_EQ(canonical_number("1,234,567"), "1234567");
  for (const char* bad : {"", ".", "-", "12a", "1e3", "1,23", "12,3456", ",123", "--2", "1.2.3", " 1", "1 "}) {
    EXPECT_EQ(canonical_number(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ExtractAnswer, Formats) {
  EXPECT_EQ(extract_answer(" 82 ", AnswerFormat::kBare, ""), "82");
  EXPECT_EQ(extract_answer("2+2 is 4 #### 4", AnswerFormat::kMarker, "####"), "4");
  EXPECT_EQ(extract_answer("#### 4 #### 5", AnswerFormat::kMarker, "####"), std::nullopt);
  EXPECT_EQ(extract_answer("#### 4 because", AnswerFormat::kMarker, "####"), std::nullopt);
  EXPECT_EQ(extract_answer("Answer: 12", AnswerFormat::kMarker, "Answer:"), "12");
  EXPECT_EQ(extract_answer("x \\boxed{7}", AnswerFormat::kBoxed, ""), "7");
}

struct Rates {
  int positives = 0, negatives = 0, false_positives = 0, false_negatives = 0;
};

TEST(Verifier, NoFalsePositiveOrNegativeOnTheLabelledTrickySet) {
  std::ifstream in(testing::source_dir() / "tests/fixtures/verifier_cases.jsonl");
  ASSERT_TRUE(in);
  Rates answer, format;
  int cases = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    VerifierOptions o;
    o.format = *core::parse_enum<AnswerFormat>(j["format"].get<std::string>());
    const std::string id = j["id"], response = j["response"], reference = j["reference"];
    const bool eos = j["eos"];
    const double got_answer = verify_answer(response, eos, reference, o);
    const double got_format = verify_format(response, eos, o);
    for (auto [rates, want, got] : {std::tuple{&answer, j["correct"].get<int>(), got_answer},
                                    std::tuple{&format, j["well_formed"].get<int>(), got_format}}) {
      (want ? rates->positives : rates->negatives)++;
      if (want && got != 1.0) rates->false_negatives++;
      if (!want && got != 0.0) rates->false_positives++;
    }
    EXPECT_EQ(got_answer, j["correct"].get<int>()) << id;
    EXPECT_EQ(got_format, j["well_formed"].get<int>()) << id;
    ++cases;
  }
  EXPECT_GE(cases, 40);
  // Both classes are represented, and both error rates are exactly 0.
  EXPECT_GE(answer.positives, 10);
  EXPECT_GE(answer.negatives, 25);
  EXPECT_EQ(answer.false_positives, 0);
  EXPECT_EQ(answer.false_negatives, 0);
  EXPECT_EQ(format.false_positives, 0);
  EXPECT_EQ(format.false_negatives, 0);
}

TEST(Verifier, RequireEosCanBeTurnedOff) {
  VerifierOptions o;
  EXPECT_EQ(verify_answer("82", false, "82", o), 0.0);
  o.require_eos = false;
  EXPECT_EQ(verify_answer("82", false, "82", o), 1.0);
  EXPECT_THROW(verify_answer("82", true, "eighty", o), DataError);
}

TEST(AnswerReward, LooksUpTheReferenceByPromptAndCombinesWithWeights) {
  testing::ScratchDir dir;
  testing::write_file(dir / "p.jsonl",
                      "{\"prompt\": \"2+3=\", \"answer\": \"5\"}\n{\"prompt\": \"9*9=\", \"answer\": 81}\n");
  RewardFunctionConfig answer;
  answer.type = RewardFunctionType::kAnswer;
  const RewardContext context{{(dir / "p.jsonl").string()}, "prompt", ""};
  const auto f = make_reward_function(answer, context);
  RewardSample s;
  s.prompt_text = "9*9=";
  s.response_text = "81";
  s.ended_with_eos = true;
  EXPECT_EQ(f->score(s), 1.0);
  s.prompt_text = "2+3=";
  EXPECT_EQ(f->score(s), 0.0);
  s.prompt_text = "1+1=";
  EXPECT_THROW(f->score(s), DataError);  // no reference: an error, never a silent 0

  RewardFunctionConfig format;
  format.type = RewardFunctionType::kFormat;
  format.weight = 0.25;
  answer.weight = 2.0;
  const auto sum = make_reward_function(std::vector<RewardFunctionConfig>{answer, format}, context);
  s.prompt_text = "2+3=";
  s.response_text = "5";
  EXPECT_DOUBLE_EQ(sum->score(s), 2.25);
  s.response_text = "6";
  EXPECT_DOUBLE_EQ(sum->score(s), 0.25);
  s.response_text = "6 or 5";
  EXPECT_DOUBLE_EQ(sum->score(s), 0.0);

  testing::write_file(dir / "bad.jsonl",
                      "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"1+1=\", \"answer\": \"3\"}\n");
  try {
    load_reference_answers((dir / "bad.jsonl").string(), "prompt", "answer");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
}

// A prompt given as a conversation is looked up by what the policy sees: the chat template's render with the
// generation prompt (Zephyr's, by hand).
TEST(AnswerReward, ConversationPromptsAreKeyedByTheirRenderedPrompt) {
  testing::ScratchDir dir;
  testing::write_file(dir / "chat.jsonl", R"({"messages": [{"role": "user", "content": "2+3="}], "answer": 5})"
                                          "\n");
  const std::string zephyr = (testing::source_dir() / "tests/fixtures/chat_templates/zephyr_7b_beta.json").string();
  const auto tmpl = data::load_chat_template(zephyr);
  EXPECT_EQ(load_reference_answers((dir / "chat.jsonl").string(), "prompt", "answer", tmpl.get()),
            (std::map<std::string, std::string>{{"<|user|>\n2+3=</s>\n<|assistant|>\n", "5"}}));
  RewardFunctionConfig answer;
  answer.type = RewardFunctionType::kAnswer;
  const auto f = make_reward_function(answer, RewardContext{{(dir / "chat.jsonl").string()}, "prompt", zephyr});
  RewardSample s;
  s.prompt_text = "<|user|>\n2+3=</s>\n<|assistant|>\n";
  s.response_text = "5";
  s.ended_with_eos = true;
  EXPECT_EQ(f->score(s), 1.0);
  try {
    load_reference_answers((dir / "chat.jsonl").string(), "prompt", "answer");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("chat.jsonl:1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("prompts.chat_template"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::rlhf
