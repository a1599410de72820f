// Tests for rlhf/rollout.h: position ids of left-padded rows, the shared minibatch schedule, and sampled rollouts
// with a stop token (EOS flags, masks, layout, and where shape_rewards puts the score: on the last generated token
// whether the row ended with EOS or was truncated). Roles built on top of these are tested in roles_test.cpp.
#include "rlhf/rollout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/generation.h"
#include "models/gpt.h"
#include "rlhf/ppo_math.h"

namespace troupe::rlhf {
namespace {

torch::Tensor longs(std::vector<int64_t> v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kLong).reshape(shape);
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(PositionsOf, CountsRealTokensOfLeftPaddedRows) {
  // Row 0: two pads, a 2-token prompt, a 2-token response, one pad after the end.
  // Row 1: no padding. Row 2: three pads, then one token, then pads.
  const torch::Tensor mask = longs({0, 0, 1, 1, 1, 1, 0,  //
                                    1, 1, 1, 1, 1, 1, 1,  //
                                    0, 0, 0, 1, 0, 0, 0},
                                   {3, 7});
  // cumsum − 1, clamped at 0: padding on the left gets 0; padding after the end repeats the last position.
  const std::vector<int64_t> expected = {0, 0, 0, 1, 2, 3, 3,  //
                                         0, 1, 2, 3, 4, 5, 6,  //
                                         0, 0, 0, 0, 0, 0, 0};
  const torch::Tensor p = positions_of(mask);
  EXPECT_EQ(p.sizes(), mask.sizes());
  EXPECT_EQ(p.scalar_type(), torch::kLong);
  EXPECT_EQ(to_vector(p), expected);
  // A float mask gives the same ids.
  EXPECT_EQ(to_vector(positions_of(mask.to(torch::kFloat32))), expected);
}

TEST(MinibatchOrder, IsAPermutationCutIntoChunks) {
  const auto chunks = minibatch_order(10, 4, /*seed=*/7, /*iteration=*/3, /*epoch=*/0);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].numel(), 4);
  EXPECT_EQ(chunks[1].numel(), 4);
  EXPECT_EQ(chunks[2].numel(), 2);  // the last chunk is shorter
  std::vector<int64_t> all;
  for (const auto& c : chunks) {
    EXPECT_EQ(c.scalar_type(), torch::kLong);
    EXPECT_EQ(c.dim(), 1);
    const auto v = to_vector(c);
    all.insert(all.end(), v.begin(), v.end());
  }
  std::vector<int64_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(10);
  for (int64_t i = 0; i < 10; ++i) iota[static_cast<size_t>(i)] = i;
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(all, iota) << "the order should be shuffled";

  const auto even = minibatch_order(8, 4, 7, 3, 0);
  ASSERT_EQ(even.size(), 2u);
  EXPECT_EQ(even[0].numel(), 4);
  EXPECT_EQ(even[1].numel(), 4);
  const auto single = minibatch_order(5, 8, 7, 3, 0);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].numel(), 5);
}

std::vector<int64_t> flat_order(int64_t n, int64_t size, uint64_t seed, int64_t iteration, int64_t epoch) {
  std::vector<int64_t> all;
  for (const auto& c : minibatch_order(n, size, seed, iteration, epoch)) {
    const auto v = to_vector(c);
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(MinibatchOrder, DependsOnlyOnSeedIterationAndEpoch) {
  const auto a = flat_order(32, 8, 7, 5, 1);
  EXPECT_EQ(a, flat_order(32, 8, 7, 5, 1));  // actor and critic agree
  EXPECT_NE(a, flat_order(32, 8, 7, 5, 2));  // another epoch
  EXPECT_NE(a, flat_order(32, 8, 7, 6, 1));  // another iteration
  EXPECT_NE(a, flat_order(32, 8, 8, 5, 1));  // another seed
  // The chunking does not change the permutation.
  EXPECT_EQ(a, flat_order(32, 5, 7, 5, 1));
}

models::Gpt tiny_policy() {
  const models::GptConfig c{.n_layer = 1, .n_head = 2, .n_embd = 32, .block_size = 16, .vocab_size = 8};
  torch::manual_seed(11);
  models::Gpt model(c);
  model->eval();
  return model;
}

constexpr int64_t kStop = 7;
constexpr int64_t kRolloutMaxNew = 4;

// Prompts of different lengths so that left padding is exercised.
const std::vector<std::vector<int64_t>> kPrompts = {{1, 2, 3}, {4}, {2, 5}, {6, 1, 1}, {3}, {5, 4}, {1}, {2, 2, 2}};

models::GenerationConfig stop_config() {
  models::GenerationConfig g;
  g.max_new_tokens = kRolloutMaxNew;
  g.do_sample = true;
  g.stop_tokens = {kStop};
  return g;
}

// First seed whose rollout has a row stopped by EOS before max_new_tokens and a row truncated at max_new_tokens.
// Generation is seeded, so the search gives the same seed on every run.
struct StopCase {
  Rollout rollout;
  models::PaddedBatch prompts;
  int64_t eos_row = -1, cut_row = -1;
};

StopCase find_stop_case(models::Gpt& model) {
  StopCase s;
  s.prompts = models::left_pad(kPrompts, 0);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    s.rollout = generate_rollout(model, s.prompts.ids, s.prompts.mask, stop_config(), seed);
    s.eos_row = s.cut_row = -1;
    for (int64_t b = 0; b < s.rollout.size(); ++b) {
      const double n = s.rollout.response_mask[b].sum().item<double>();
      const bool eos = s.rollout.eos[b].item<float>() > 0.5f;
      if (eos && n < kRolloutMaxNew && s.eos_row < 0) s.eos_row = b;
      if (!eos && s.cut_row < 0) s.cut_row = b;
    }
    if (s.eos_row >= 0 && s.cut_row >= 0) return s;
  }
  ADD_FAILURE() << "no seed in 0..199 gives both an EOS row and a truncated row";
  return s;
}

TEST(GenerateRollout, StopTokenEndsRowsAndTruncatedRowsRunToTheLimit) {
  models::Gpt model = tiny_policy();
  const StopCase s = find_stop_case(model);
  ASSERT_GE(s.eos_row, 0);
  ASSERT_GE(s.cut_row, 0);
  const Rollout& r = s.rollout;
  const int64_t B = static_cast<int64_t>(kPrompts.size()), P = s.prompts.ids.size(1);
  ASSERT_EQ(r.prompt_length, P);
  ASSERT_EQ(r.size(), B);
  ASSERT_EQ(r.response_length(), kRolloutMaxNew);  // a truncated row is max_new_tokens long
  ASSERT_EQ(r.sequences.sizes(), (std::vector<int64_t>{B, P + kRolloutMaxNew}));
  ASSERT_EQ(r.attention_mask.sizes(), r.sequences.sizes());
  ASSERT_EQ(r.response_mask.sizes(), (std::vector<int64_t>{B, kRolloutMaxNew}));
  ASSERT_EQ(r.sample_logprobs.sizes(), r.response_mask.sizes());
  ASSERT_EQ(r.eos.sizes(), (std::vector<int64_t>{B}));
  EXPECT_EQ(r.response_mask.scalar_type(), torch::kFloat32);
  EXPECT_EQ(r.eos.scalar_type(), torch::kFloat32);

  // The prompt part is the left-padded prompt, unchanged.
  EXPECT_TRUE(torch::equal(r.sequences.slice(1, 0, P), s.prompts.ids));
  EXPECT_TRUE(torch::equal(r.attention_mask.slice(1, 0, P), s.prompts.mask));
  EXPECT_TRUE(torch::equal(r.attention_mask.slice(1, P), r.response_mask.to(torch::kLong)));

  for (int64_t b = 0; b < B; ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    const auto mask = to_vector(r.response_mask[b]);
    const auto response = to_vector(r.sequences[b].slice(0, P));
    int64_t n = 0;
    while (n < kRolloutMaxNew && mask[static_cast<size_t>(n)] == 1) ++n;
    ASSERT_GE(n, 1);
    for (int64_t t = n; t < kRolloutMaxNew; ++t) {
      EXPECT_EQ(mask[static_cast<size_t>(t)], 0) << "response_mask is not a prefix of ones";
      EXPECT_EQ(response[static_cast<size_t>(t)], 0) << "pad after the end";
      EXPECT_EQ(r.sample_logprobs[b][t].item<float>(), 0.0f);
    }
    for (int64_t t = 0; t < n; ++t) {
      EXPECT_LT(r.sample_logprobs[b][t].item<float>(), 0.0f);
      if (t < n - 1) {
        EXPECT_NE(response[static_cast<size_t>(t)], kStop) << "the row should have ended here";
      }
    }
    const bool eos = r.eos[b].item<float>() > 0.5f;
    if (eos) {
      EXPECT_EQ(response[static_cast<size_t>(n - 1)], kStop);  // the stop token is kept
    } else {
      EXPECT_EQ(n, kRolloutMaxNew);
      EXPECT_NE(response[static_cast<size_t>(n - 1)], kStop);
    }
  }
}

TEST(GenerateRollout, ShapedRewardSitsOnTheLastGeneratedTokenForEosAndTruncation) {
  models::Gpt model = tiny_policy();
  const StopCase s = find_stop_case(model);
  ASSERT_GE(s.eos_row, 0);
  ASSERT_GE(s.cut_row, 0);
  const Rollout& r = s.rollout;
  const int64_t B = r.size(), T = r.response_length(), P = r.prompt_length;
  const torch::Tensor scores = torch::arange(1, B + 1, torch::kFloat32) * 0.5;  // distinct per row
  const torch::Tensor rewards = shape_rewards(scores, torch::zeros({B, T}), r.response_mask, 0.0);
  ASSERT_EQ(rewards.sizes(), (std::vector<int64_t>{B, T}));

  // The EOS row: the score is on the EOS token, which comes before max_new_tokens.
  const int64_t n_eos = static_cast<int64_t>(r.response_mask[s.eos_row].sum().item<double>());
  ASSERT_LT(n_eos, kRolloutMaxNew);
  EXPECT_EQ(r.sequences[s.eos_row][P + n_eos - 1].item<int64_t>(), kStop);
  // The truncated row: the score is on its last token, at max_new_tokens − 1.
  const int64_t n_cut = static_cast<int64_t>(r.response_mask[s.cut_row].sum().item<double>());
  ASSERT_EQ(n_cut, kRolloutMaxNew);
  for (const auto& [row, last] : {std::pair{s.eos_row, n_eos - 1}, std::pair{s.cut_row, n_cut - 1}}) {
    SCOPED_TRACE("row " + std::to_string(row));
    for (int64_t t = 0; t < T; ++t) {
      const float expected = t == last ? scores[row].item<float>() : 0.0f;
      EXPECT_FLOAT_EQ(rewards[row][t].item<float>(), expected) << "t = " << t;
    }
  }
  // Every row: one nonzero entry, equal to its score, at its last real token.
  EXPECT_TRUE(torch::allclose(rewards.sum(1), scores.to(rewards.scalar_type())));
  EXPECT_TRUE(torch::equal(last_token_index(r.response_mask), r.response_mask.sum(1).to(torch::kLong) - 1));
}

TEST(GenerateRollout, ResponseLogprobsRecomputeTheSamplingLogprobs) {
  models::Gpt model = tiny_policy();
  const StopCase s = find_stop_case(model);
  torch::NoGradGuard no_grad;
  const ResponseForward f = response_logprobs(model, s.rollout, /*entropy=*/true);
  ASSERT_EQ(f.logprobs.sizes(), s.rollout.response_mask.sizes());
  ASSERT_EQ(f.entropy.sizes(), s.rollout.response_mask.sizes());
  const torch::Tensor diff = ((f.logprobs - s.rollout.sample_logprobs) * s.rollout.response_mask).abs().max();
  EXPECT_LT(diff.item<double>(), 1e-5);
  // A fresh random GPT is close to uniform over 8 tokens: entropy just under log 8.
  const double h = masked_mean(f.entropy, s.rollout.response_mask).item<double>();
  EXPECT_GT(h, 0.9 * std::log(8.0));
  EXPECT_LE(h, std::log(8.0) + 1e-6);
}

TEST(GenerateRollout, SameSeedSameRolloutOtherSeedOtherRollout) {
  models::Gpt model = tiny_policy();
  const auto p = models::left_pad(kPrompts, 0);
  const Rollout a = generate_rollout(model, p.ids, p.mask, stop_config(), 5);
  const Rollout b = generate_rollout(model, p.ids, p.mask, stop_config(), 5);
  const Rollout c = generate_rollout(model, p.ids, p.mask, stop_config(), 6);
  EXPECT_TRUE(torch::equal(a.sequences, b.sequences));
  EXPECT_TRUE(torch::equal(a.sample_logprobs, b.sample_logprobs));
  EXPECT_FALSE(a.sequences.sizes() == c.sequences.sizes() && torch::equal(a.sequences, c.sequences));
}

// Packing: attention never crosses from one packed sequence to another — changing every token of one segment leaves
// the other segment's hidden states bit for bit — and packed log-probs (with their gradients) equal the padded
// batch's up to float summation order.
TEST(Packing, AttentionNeverCrossesASegmentBoundary) {
  torch::manual_seed(2);
  const models::GptConfig c{.n_layer = 2, .n_head = 2, .n_embd = 16, .block_size = 16, .vocab_size = 11};
  models::Gpt model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  models::GptInput in;
  in.ids = longs({1, 2, 3, 4, 5, 6, 7, 8}, {1, 8});
  in.positions = longs({0, 1, 2, 0, 1, 2, 3, 4}, {1, 8});
  in.segment_ids = longs({1, 1, 1, 2, 2, 2, 2, 2}, {1, 8});
  const torch::Tensor a = model->hidden(in);
  in.ids = longs({9, 10, 9, 4, 5, 6, 7, 8}, {1, 8});  // segment 1 changed entirely
  const torch::Tensor b = model->hidden(in);
  EXPECT_TRUE(torch::equal(a.slice(1, 3), b.slice(1, 3))) << "segment 2 saw segment 1";
  EXPECT_FALSE(torch::equal(a.slice(1, 0, 3), b.slice(1, 0, 3)));
  // Segment 2 packed equals segment 2 alone.
  models::GptInput alone;
  alone.ids = longs({4, 5, 6, 7, 8}, {1, 5});
  EXPECT_TRUE(torch::allclose(a.slice(1, 3), model->hidden(alone), 1e-5, 1e-6));
}

TEST(Packing, PackedLogprobsAndGradientsEqualThePaddedBatch) {
  torch::manual_seed(3);
  const models::GptConfig c{.n_layer = 1, .n_head = 2, .n_embd = 16, .block_size = 12, .vocab_size = 9};
  models::Gpt model(c);
  model->eval();
  // Three rows: prompts of 1-3 real tokens (left-padded to 3), responses of 4, 2 and 1 tokens (right-padded).
  SequenceBatch batch;
  batch.prompt_length = 3;
  batch.sequences = longs({0, 0, 5, 1, 2, 3, 4, /**/ 0, 6, 7, 8, 1, 0, 0, /**/ 2, 3, 4, 5, 0, 0, 0}, {3, 7});
  batch.attention_mask = longs({0, 0, 1, 1, 1, 1, 1, /**/ 0, 1, 1, 1, 1, 0, 0, /**/ 1, 1, 1, 1, 0, 0, 0}, {3, 7});
  batch.response_mask = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0}, torch::kFloat32).reshape({3, 4});
  const ResponseForward padded = response_logprobs(model, batch, true);
  const ResponseForward packed = response_logprobs_packed(model, batch, true);
  const torch::Tensor m = batch.response_mask;
  EXPECT_TRUE(torch::allclose(padded.logprobs * m, packed.logprobs, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(padded.entropy * m, packed.entropy, 1e-5, 1e-6));
  const auto grads = [&](const torch::Tensor& lp) {
    model->zero_grad();
    (lp * m).sum().backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : model->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto ga = grads(padded.logprobs), gb = grads(packed.logprobs);
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_TRUE(torch::allclose(ga[i], gb[i], 1e-4, 1e-6)) << i;
}

}  // namespace
}  // namespace troupe::rlhf
