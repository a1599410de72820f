// `troupe generate` end to end: a random GPT saved as a Hugging Face directory is continued from the CLI, and the
// printed ids and log-probs equal the library's generate() on the same model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "models/generation.h"
#include "models/gpt_io.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using ::testing::HasSubstr;
using testing::ScratchDir;

models::Gpt saved_model(const std::filesystem::path& dir, int64_t vocab) {
  models::GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 64;
  c.vocab_size = vocab;
  torch::manual_seed(9);
  models::Gpt model(c);
  model->eval();
  models::save_hf_gpt2(dir, model);
  return model;
}

TEST(CliGenerate, JsonIdsAndLogprobsEqualTheLibrary) {
  ScratchDir dir;
  models::Gpt model = saved_model(dir / "hf", 97);
  auto r =
      testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "1,2,3", "--prompt-ids", "40,41",
                           "-n", "6", "--sample", "--temperature", "0.9", "--top-k", "20", "--seed", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  models::GenerationConfig c;
  c.max_new_tokens = 6;
  c.do_sample = true;
  c.temperature = 0.9;
  c.top_k = 20;
  c.seed = 4;
  const auto expected = models::generate(model, {{1, 2, 3}, {40, 41}}, c);
  ASSERT_EQ(j.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(j[i]["ids"].get<std::vector<int64_t>>(), expected.tokens[i]);
    const auto lps = j[i]["logprobs"].get<std::vector<float>>();
    ASSERT_EQ(lps.size(), expected.logprobs[i].size());
    for (size_t k = 0; k < lps.size(); ++k) EXPECT_NEAR(lps[k], expected.logprobs[i][k], 1e-6);
  }
  // Greedy with and without the KV cache print the same ids.
  auto cached = testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "5,6,7", "-n", "8"});
  auto plain =
      testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "5,6,7", "-n", "8", "--no-cache"});
  ASSERT_EQ(cached.exit_code, 0) << cached.output;
  EXPECT_EQ(cached.output, plain.output);
}

TEST(CliGenerate, TextPromptsWithATokenizerAndClearErrors) {
  ScratchDir dir;
  saved_model(dir / "hf", 50257);
  const std::string gpt2 = (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  auto r =
      testing::run_troupe({"generate", "-c", (dir / "hf").string(), "-t", gpt2, "--prompt", "Hello, world", "-n", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("Hello, world", 0), 0u) << r.output;
  auto missing = testing::run_troupe({"generate", "-c", (dir / "nope").string(), "--prompt-ids", "1"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("config.json + model.safetensors) or a Troupe run"));
  auto bad_ids = testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "1,x"});
  EXPECT_EQ(bad_ids.exit_code, 2);
  EXPECT_THAT(bad_ids.output, HasSubstr("got 'x'"));
  auto too_long = testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "1,2", "-n", "100"});
  EXPECT_EQ(too_long.exit_code, 2);
  EXPECT_THAT(too_long.output, HasSubstr("exceeds block_size 64"));
  auto unanchored = testing::run_troupe({"generate", "-c", (dir / "hf").string(), "--prompt-ids", "1", "--stop", "x"});
  EXPECT_EQ(unanchored.exit_code, 2);
  EXPECT_THAT(unanchored.output, HasSubstr("--stop needs --tokenizer"));
}

// --stop ends a row once its new text contains the string; --engine simple gives the same greedy ids.
TEST(CliGenerate, StopStringsEndRowsAndBothEnginesAgreeOnGreedyIds) {
  ScratchDir dir;
  saved_model(dir / "hf", 50257);
  const std::string gpt2 = (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  const std::vector<std::string> base = {"generate", "-c", (dir / "hf").string(), "-t",    gpt2, "--prompt", "Hello",
                                         "-n",       "12", "--no-stop",           "--json"};
  auto free_run = testing::run_troupe(base);
  ASSERT_EQ(free_run.exit_code, 0) << free_run.output;
  const auto all = nlohmann::json::parse(free_run.output)[0];
  const auto ids = all["ids"].get<std::vector<int64_t>>();
  const std::string text = all["text"].get<std::string>();
  ASSERT_EQ(ids.size(), 12u);
  ASSERT_GE(text.size(), 4u);
  const std::string stop = text.substr(2, 2);  // completed by some token after the first
  std::vector<std::string> with_stop = base;
  with_stop.insert(with_stop.end(), {"--stop", stop});
  auto stopped = testing::run_troupe(with_stop);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  const auto row = nlohmann::json::parse(stopped.output)[0];
  const auto prefix = row["ids"].get<std::vector<int64_t>>();
  EXPECT_TRUE(row["stopped"].get<bool>());
  ASSERT_LT(prefix.size(), ids.size());
  EXPECT_EQ(prefix, std::vector<int64_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(prefix.size())));
  EXPECT_THAT(row["text"].get<std::string>(), HasSubstr(stop));
  std::vector<std::string> simple = base;
  simple.insert(simple.end(), {"--engine", "simple"});
  auto looped = testing::run_troupe(simple);
  ASSERT_EQ(looped.exit_code, 0) << looped.output;
  EXPECT_EQ(nlohmann::json::parse(looped.output)[0]["ids"].get<std::vector<int64_t>>(), ids);
}

}  // namespace
}  // namespace troupe
