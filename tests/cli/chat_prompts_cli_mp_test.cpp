// Prompt files of chat {"messages": [...]} lines, rendered by a chat template (Zephyr's), through the commands that
// sample from prompts, as a user runs them (GPT-2's tokenizer, a one-layer GPT, a few seconds each):
//  - `troupe run` (kind ppo): every rollout's prompt is the template's render: the `metric` reward looks each
//    decoded rollout prompt up among the renders of the file and fails naming the prompt when it is not there (as
//    it does, showing the rendered prompt, against references keyed by the bare user text); without
//    prompts.chat_template the first line is a config error naming it;
//  - `troupe eval policies --chat-template`: the table's rows (one per policy, over every prompt and sample) with
//    ROUGE-L/BLEU against the lines' references; without the template an error naming --chat-template;
//  - `troupe data label-preferences --chat-template`: pairs in TRL's conversational form (the prompt's messages,
//    one assistant turn each), the chosen one scoring higher under the lexicon.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/run_log.h"
#include "rlhf/reward_functions.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

constexpr int kPrompts = 8;

// Zephyr's render of one user turn with the generation prompt (as tests/rlhf/verifiers_test.cpp spells it out).
std::string zephyr(const std::string& user) { return "<|user|>\n" + user + "</s>\n<|assistant|>\n"; }
std::string question(int i) { return "what is " + std::to_string(i) + " plus one?"; }

class ChatPromptsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string chat, bare;
    for (int i = 0; i < kPrompts; ++i) {
      const nlohmann::json m = {{"role", "user"}, {"content", question(i)}};
      const std::string reference = "it is " + std::to_string(i + 1);
      chat += nlohmann::json{{"messages", {m}}, {"reference", reference}}.dump() + "\n";
      bare += nlohmann::json{{"prompt", question(i)}, {"reference", reference}}.dump() + "\n";
    }
    write_file(dir_ / "chat.jsonl", chat);
    write_file(dir_ / "bare_refs.jsonl", bare);
    write_file(dir_ / "ppo.yaml",
               "kind: ppo\nseed: 3\nrun: {dir: " + (dir_ / "runs").string() +
                   "}\nruntime: {threads: 1}\ncheckpoint: {every: 0, keep_last: 1}\n"
                   "actor:\n"
                   "  model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 64, vocab_size: 50257, dropout: 0.0}\n"
                   "  optim: {lr: 1.0e-3, warmup_steps: 0}\n"
                   "reward: {function: {type: metric, metric: rougeL}}\n"
                   "prompts: {file: " +
                   (dir_ / "chat.jsonl").string() + ", tokenizer: " + tokenizer_ + ", chat_template: " + template_ +
                   ", max_length: 40}\n"
                   "generation: {max_new_tokens: 6, do_sample: true}\n"
                   "ppo: {iterations: 2, rollout_batch: 4, minibatch: 4, epochs: 1}\n"
                   "placement: {heartbeat_s: 0.2}\n");
  }
  testing::ProcessResult ppo(const std::string& name, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {testing::cli_path(), "run", (dir_ / "ppo.yaml").string(), "run.name=" + name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, std::chrono::seconds(240));
  }
  fs::path run(const std::string& name) const { return dir_ / "runs" / name; }

  ScratchDir dir_{"troupe-chat-prompts"};
  const std::string tokenizer_ = (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  const std::string template_ = (testing::source_dir() / "tests/fixtures/chat_templates/zephyr_7b_beta.json").string();
  const std::string lexicon_ = (testing::source_dir() / "tests/fixtures/lexicons/afinn165.tsv").string();
};

TEST_F(ChatPromptsCli, PpoRolloutsStartWithTheRenderedPrompt) {
  // The metric reward scores a rollout only when its decoded prompt is one of the file's renders (else DataError):
  // a finished run means every rollout of both iterations started with a rendered prompt.
  const auto r = ppo("chat");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("(" + std::to_string(kPrompts) + " prompts)"));
  core::RunLogReader log(run("chat") / "log.h5");
  const auto reward = log.metric("reward/raw_mean");
  ASSERT_EQ(reward.values.size(), 2u);
  for (double v : reward.values) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }

  // References keyed by the bare user text: the reward names the prompt the rollout carried, the render.
  const auto bare = ppo("bare", {"reward.function.answers=" + (dir_ / "bare_refs.jsonl").string()});
  EXPECT_NE(bare.exit_code, 0) << bare.output;
  EXPECT_THAT(bare.output, HasSubstr("no reference text for the prompt '<|user|>\nwhat is "));
  EXPECT_THAT(bare.output, HasSubstr(" plus one?</s>\n<|assistant|>\n'"));

  // Without the template a messages line cannot be read: a config error naming the file's line and the key.
  const auto none = ppo("none", {"prompts.chat_template="});
  EXPECT_NE(none.exit_code, 0) << none.output;
  EXPECT_THAT(none.output, HasSubstr((dir_ / "chat.jsonl").string() + ":1"));
  EXPECT_THAT(none.output, HasSubstr("prompts.chat_template"));
}

TEST_F(ChatPromptsCli, EvalPoliciesAndLabelPreferencesReadConversations) {
  const auto trained = ppo("policy", {"ppo.iterations=1"});  // a model directory to sample from
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string model = run("policy").string();

  std::vector<std::string> eval = {testing::cli_path(),
                                   "eval",
                                   "policies",
                                   "--reference",
                                   model,
                                   "--policy",
                                   "same=" + model,
                                   "-t",
                                   tokenizer_,
                                   "--prompts",
                                   (dir_ / "chat.jsonl").string(),
                                   "--samples",
                                   "2",
                                   "-n",
                                   "6",
                                   "--reward",
                                   "lexicon",
                                   "--lexicon",
                                   lexicon_,
                                   "--threads",
                                   "1",
                                   "--out",
                                   (dir_ / "table.json").string()};
  const auto missing = run_process(eval);  // no --chat-template
  EXPECT_NE(missing.exit_code, 0) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr((dir_ / "chat.jsonl").string() + ":1"));
  EXPECT_THAT(missing.output, HasSubstr("--chat-template"));
  eval.insert(eval.end(), {"--chat-template", template_});
  const auto ev = run_process(eval);
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto table = nlohmann::json::parse(testing::read_file(dir_ / "table.json"));
  ASSERT_EQ(table["rows"].size(), 2u) << table.dump();
  EXPECT_EQ(table["rows"][0][0], "reference");
  EXPECT_EQ(table["rows"][1][0], "same");
  ASSERT_EQ(table["columns"].size(), 10u) << table.dump();  // every line has a reference: ROUGE-L and BLEU too
  EXPECT_EQ(table["columns"][8], "rougeL");
  for (const auto& row : table["rows"]) {
    EXPECT_GE(row[8].get<double>(), 0.0);
    EXPECT_LE(row[8].get<double>(), 1.0);
  }

  const auto lp = run_process({testing::cli_path(),
                               "data",
                               "label-preferences",
                               "--policy",
                               model,
                               "-t",
                               tokenizer_,
                               "--prompts",
                               (dir_ / "chat.jsonl").string(),
                               "--chat-template",
                               template_,
                               "-o",
                               (dir_ / "prefs").string(),
                               "--reward",
                               "lexicon",
                               "--lexicon",
                               lexicon_,
                               "-n",
                               "16",
                               "--val-fraction",
                               "0",
                               "--threads",
                               "1",
                               "--seed",
                               "2"});
  ASSERT_EQ(lp.exit_code, 0) << lp.output;
  const rlhf::LexiconSentimentReward lex(lexicon_);
  std::ifstream in(dir_ / "prefs/train.jsonl");
  int pairs = 0;
  for (std::string line; std::getline(in, line);) {
    const auto p = nlohmann::json::parse(line);
    ASSERT_TRUE(p["prompt"].is_array()) << line;  // TRL's conversational form: the prompt's messages
    ASSERT_EQ(p["prompt"].size(), 1u) << line;
    EXPECT_EQ(p["prompt"][0]["role"], "user");
    EXPECT_THAT(p["prompt"][0]["content"].get<std::string>(), HasSubstr(" plus one?"));
    for (const char* side : {"chosen", "rejected"}) {
      ASSERT_EQ(p[side].size(), 1u) << line;
      EXPECT_EQ(p[side][0]["role"], "assistant") << line;
    }
    rlhf::RewardSample c, rj;
    c.response_text = p["chosen"][0]["content"];
    rj.response_text = p["rejected"][0]["content"];
    EXPECT_GT(lex.score(c), lex.score(rj)) << line;
    ++pairs;
  }
  EXPECT_GT(pairs, 0);
  EXPECT_THAT(lp.output, HasSubstr(std::to_string(kPrompts) + " prompts: " + std::to_string(pairs) + " pairs"));
}

}  // namespace
}  // namespace troupe
