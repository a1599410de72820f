// The arithmetic task: answers are right, problems are distinct and the test split disjoint from the training
// files, output is deterministic for a seed, the tokenizer encodes every character as one token, and bad options
// are ConfigErrors.
#include "data/arithmetic.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::data {
namespace {

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

int64_t evaluate(const std::string& prompt) {  // "a?b="
  const size_t op = prompt.find_first_of("+-*", 1);
  const int64_t a = std::stoll(prompt.substr(0, op)), b = std::stoll(prompt.substr(op + 1));
  return prompt[op] == '+' ? a + b : prompt[op] == '-' ? a - b : a * b;
}

TEST(Arithmetic, WritesCorrectDisjointDeterministicFiles) {
  testing::ScratchDir dir;
  ArithmeticOptions o;
  o.digits = 2;
  o.ops = "+-*";
  o.sft_count = 300;
  o.prompt_count = 200;
  o.test_count = 100;
  const ArithmeticTaskFiles f = write_arithmetic_task(dir / "a", o);
  const auto sft = read_jsonl(f.sft), prompts = read_jsonl(f.prompts), test = read_jsonl(f.test);
  ASSERT_EQ(sft.size(), 300u);
  ASSERT_EQ(prompts.size(), 200u);
  ASSERT_EQ(test.size(), 100u);
  std::set<std::string> train_prompts, test_prompts, ops;
  for (const auto& j : sft) {
    EXPECT_EQ(std::stoll(j["response"].get<std::string>()), evaluate(j["prompt"])) << j.dump();
    train_prompts.insert(j["prompt"].get<std::string>());
    ops.insert(std::string(1, j["prompt"].get<std::string>()[j["prompt"].get<std::string>().find_first_of("+-*", 1)]));
  }
  EXPECT_EQ(train_prompts.size(), 300u);  // distinct
  EXPECT_EQ(ops.size(), 3u);
  for (const auto& j : prompts) {
    EXPECT_EQ(std::stoll(j["answer"].get<std::string>()), evaluate(j["prompt"]));
    train_prompts.insert(j["prompt"].get<std::string>());
  }
  for (const auto& j : test) {
    EXPECT_EQ(std::stoll(j["answer"].get<std::string>()), evaluate(j["prompt"]));
    test_prompts.insert(j["prompt"].get<std::string>());
    EXPECT_EQ(train_prompts.count(j["prompt"].get<std::string>()), 0u) << "test problem in the training files";
  }
  EXPECT_EQ(test_prompts.size(), 100u);

  write_arithmetic_task(dir / "b", o);
  EXPECT_EQ(testing::read_file(dir / "a" / "sft.jsonl"), testing::read_file(dir / "b" / "sft.jsonl"));
  o.seed = 2;
  write_arithmetic_task(dir / "c", o);
  EXPECT_NE(testing::read_file(dir / "a" / "sft.jsonl"), testing::read_file(dir / "c" / "sft.jsonl"));

  const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(f.tokenizer.string(), "");
  EXPECT_EQ(tok.encode_ordinary("37+45=82"), (std::vector<int>{'3', '7', '+', '4', '5', '=', '8', '2'}));
  EXPECT_EQ(tok.spec().special_tokens.at("<|endoftext|>"), 256);
}

TEST(Arithmetic, ErrorRateMakesSomeSftAnswersWrong) {
  testing::ScratchDir dir;
  ArithmeticOptions o;
  o.sft_count = 400;
  o.prompt_count = 10;
  o.test_count = 10;
  o.sft_error_rate = 0.5;
  int wrong = 0;
  for (const auto& j : read_jsonl(write_arithmetic_task(dir.path(), o).sft))
    wrong += std::stoll(j["response"].get<std::string>()) != evaluate(j["prompt"]) ? 1 : 0;
  EXPECT_GT(wrong, 150);
  EXPECT_LT(wrong, 250);
}

TEST(Arithmetic, WorkingStepsAreHandComputedAndEndInTheAnswer) {
  EXPECT_EQ(arithmetic_working("37+45="), "37+5=42 42+40=82");
  EXPECT_EQ(arithmetic_working("37-45="), "37-5=32 32-40=-8");
  EXPECT_EQ(arithmetic_working("37*45="), "37*5=185 37*40=1480 185+1480=1665");
  EXPECT_EQ(arithmetic_working("37+40="), "37+40=77");
  EXPECT_EQ(arithmetic_working("37*0="), "37*0=0");
  EXPECT_EQ(arithmetic_working("5*305="), "5*5=25 5*300=1500 25+1500=1525");
  for (const char* bad : {"37+45", "+45=", "37/45=", "3a+4=", "37+="}) {
    EXPECT_THROW(arithmetic_working(bad), ConfigError) << bad;
  }
  // The other paths: places largest first, operands swapped (+ and * only).
  EXPECT_EQ(arithmetic_working("37+45=", 1), "37+40=77 77+5=82");
  EXPECT_EQ(arithmetic_working("37+45=", 2), "45+7=52 52+30=82");
  EXPECT_EQ(arithmetic_working("37+45=", 3), "45+30=75 75+7=82");
  EXPECT_EQ(arithmetic_working("37-45=", 1), "37-40=-3 -3-5=-8");
  EXPECT_EQ(arithmetic_working("37*45=", 3), "45*30=1350 45*7=315 1350+315=1665");
  EXPECT_EQ(arithmetic_working_paths("37-45="), 2);
  EXPECT_EQ(arithmetic_working_paths("37*45="), 4);
  EXPECT_THROW(arithmetic_working("37-45=", 2), ConfigError);

  // Written with working_rate 0.5: about half the responses show working, every one ends in "#### ANSWER", and
  // the answers (right and wrong) are those of the same task written without working.
  testing::ScratchDir dir;
  ArithmeticOptions o;
  o.ops = "+-*";
  o.sft_count = 400;
  o.prompt_count = 10;
  o.test_count = 10;
  o.sft_error_rate = 0.3;
  const auto plain = read_jsonl(write_arithmetic_task(dir / "plain", o).sft);
  o.working_rate = 0.5;
  const auto worked = read_jsonl(write_arithmetic_task(dir / "worked", o).sft);
  ASSERT_EQ(plain.size(), worked.size());
  int with_working = 0;
  for (size_t i = 0; i < worked.size(); ++i) {
    const std::string response = worked[i]["response"];
    const size_t marker = response.find("#### ");
    ASSERT_NE(marker, std::string::npos) << response;
    EXPECT_EQ(response.substr(marker + 5), plain[i]["response"].get<std::string>());
    if (marker == 0) continue;
    ++with_working;
    const std::string working = response.substr(0, marker - 1);
    EXPECT_EQ(working, arithmetic_working(worked[i]["prompt"]));
    // The last step's result is the true answer, whatever the (possibly wrong) stated one.
    EXPECT_EQ(std::stoll(working.substr(working.rfind('=') + 1)), evaluate(worked[i]["prompt"])) << working;
  }
  EXPECT_GT(with_working, 150);
  EXPECT_LT(with_working, 250);

  // varied_working: the same responses but each working one of its problem's paths, every path used, each ending
  // at the true answer.
  o.varied_working = true;
  const auto varied = read_jsonl(write_arithmetic_task(dir / "varied", o).sft);
  ASSERT_EQ(varied.size(), worked.size());
  std::set<int> paths_used;
  for (size_t i = 0; i < varied.size(); ++i) {
    const std::string response = varied[i]["response"], before = worked[i]["response"];
    const size_t marker = response.find("#### ");
    ASSERT_NE(marker, std::string::npos) << response;
    EXPECT_EQ(response.substr(marker), before.substr(before.find("#### ")));  // the same stated answer
    EXPECT_EQ(marker == 0, before.find("#### ") == 0);                        // working in the same responses
    if (marker == 0) continue;
    const std::string working = response.substr(0, marker - 1);
    int path = -1;
    for (int k = 0; k < arithmetic_working_paths(varied[i]["prompt"]); ++k) {
      if (arithmetic_working(varied[i]["prompt"], k) == working) path = k;
    }
    ASSERT_GE(path, 0) << working;
    paths_used.insert(path);
  }
  EXPECT_EQ(paths_used, (std::set<int>{0, 1, 2, 3}));
  o.varied_working = false;

  // With ramble_rate 0.25 about a quarter of the responses are the working 8 times over, with no answer; the others
  // are as without.
  o.ramble_rate = 0.25;
  const auto rambling = read_jsonl(write_arithmetic_task(dir / "ramble", o).sft);
  int rambles = 0;
  for (size_t i = 0; i < rambling.size(); ++i) {
    const std::string response = rambling[i]["response"];
    if (response == worked[i]["response"].get<std::string>()) continue;
    ++rambles;
    const std::string w = arithmetic_working(rambling[i]["prompt"]);
    std::string eight = w;
    for (int k = 1; k < 8; ++k) eight += " " + w;
    EXPECT_EQ(response, eight);
  }
  EXPECT_GT(rambles, 70);
  EXPECT_LT(rambles, 130);
}

TEST(Arithmetic, RejectsBadOptions) {
  ArithmeticOptions o;
  o.ops = "/";
  EXPECT_THROW(draw_arithmetic_problems(o, 1, 0, {}), ConfigError);
  o = ArithmeticOptions{};
  o.digits = 1;  // 10 x 10 sums: 100 problems, at most half drawn
  EXPECT_THROW(draw_arithmetic_problems(o, 60, 0, {}), ConfigError);
  EXPECT_EQ(draw_arithmetic_problems(o, 40, 0, {}).size(), 40u);
  o = ArithmeticOptions{};
  o.working_rate = 1.5;
  EXPECT_THROW(write_arithmetic_task(testing::ScratchDir().path(), o), ConfigError);
}

}  // namespace
}  // namespace troupe::data
