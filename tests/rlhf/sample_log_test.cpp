// Tests of rlhf/sample_log.h: a hand-made rollout row (left-padded prompt, right-padded response) decodes to the
// text GPT-2's tokenizer gives for its real ids, shows ids without a tokenizer, and lands in the log's samples table.
#include "rlhf/sample_log.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/support/test_support.h"
#include "tests/support/tokenizer_test_data.h"

namespace troupe::rlhf {
namespace {

// Two rows, P = 3, T = 3: row 0 is [pad | "hello" " world"] -> ["hello" " world" pad]; row 1 prompt " world" only.
Rollout two_sampled_rows() {
  Rollout r;
  r.prompt_length = 3;
  r.sequences = torch::tensor({{0, 31373, 995, 31373, 995, 0}, {0, 0, 995, 995, 0, 0}}, torch::kInt64);  // [2, 6]
  r.attention_mask = torch::tensor({{0, 1, 1, 1, 1, 0}, {0, 0, 1, 1, 0, 0}}, torch::kInt64);             // [2, 6]
  r.response_mask = torch::tensor({{1, 1, 0}, {1, 0, 0}}, torch::kFloat32);                              // [2, 3]
  return r;
}

TEST(SampleLog, DecodesTheRealTokensOfARow) {
  const Rollout r = two_sampled_rows();
  const auto& tok = testing::gpt2_tokenizer();
  EXPECT_EQ(prompt_text(r, 0, &tok), "hello world");
  EXPECT_EQ(completion_text(r, 0, &tok), "hello world");
  EXPECT_EQ(prompt_text(r, 1, &tok), " world");
  EXPECT_EQ(completion_text(r, 1, &tok), " world");
  EXPECT_EQ(prompt_text(r, 0, nullptr), "ids: 31373 995");
  EXPECT_EQ(completion_text(r, 1, nullptr), "ids: 995");
}

TEST(SampleLog, WritesTheFirstRowsIntoTheSamplesTable) {
  testing::ScratchDir dir("sample-log");
  {
    auto log = core::RunLog::create(dir / "log.h5", "kind: ppo\n", core::RunMetadata{});
    const torch::Tensor scores = torch::tensor({0.5, -1.25}, torch::kFloat32);  // [B]
    const torch::Tensor raw = torch::tensor({0.75, 0.0}, torch::kFloat32);      // [B]
    log_samples(log, 7, two_sampled_rows(), scores, raw, nullptr, 1);
    log_samples(log, 8, two_sampled_rows(), scores, raw, nullptr, 4);  // more than B: all rows
  }
  const auto t = core::RunLogReader(dir / "log.h5").table("samples");
  EXPECT_EQ(t.at("step"), (std::vector<std::string>{"7", "8", "8"}));
  EXPECT_EQ(t.at("completion"), (std::vector<std::string>{"ids: 31373 995", "ids: 31373 995", "ids: 995"}));
  EXPECT_EQ(t.at("reward"), (std::vector<std::string>{"0.5", "0.5", "-1.25"}));
  EXPECT_EQ(t.at("raw_reward"), (std::vector<std::string>{"0.75", "0.75", "0"}));
}

}  // namespace
}  // namespace troupe::rlhf
