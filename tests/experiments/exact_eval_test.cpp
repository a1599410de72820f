// Tests of experiments/exact_eval.h: the enumeration order, exact expectations and the KL-regularised optimum on
// hand-computed cases, and sequence log-probs of a real (random) GPT against a direct forward pass.
#include "experiments/exact_eval.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/errors.h"

namespace troupe::experiments {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<int64_t> row(const at::Tensor& t, int64_t i) {
  const at::Tensor r = t[i].contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

TEST(ExactEval, EnumeratesResponsesLexicographically) {
  const at::Tensor y = enumerate_responses(2, 2);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(row(y, 0), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(row(y, 1), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(row(y, 2), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(row(y, 3), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(enumerate_responses(8, 4).size(0), 4096);
  EXPECT_EQ(row(enumerate_responses(3, 3), 5), (std::vector<int64_t>{0, 1, 2}));  // 5 = 012 in base 3
  EXPECT_THROW(enumerate_responses(50257, 2), ConfigError);                       // above kMaxResponses
  const auto prompts = all_prompts(8, 2);
  ASSERT_EQ(prompts.size(), 49u);  // ids 1..7 at both positions
  EXPECT_EQ(prompts.front(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(prompts.back(), (std::vector<int64_t>{7, 7}));
}

// Uniform π_ref over V = 2, L = 2 with the pattern reward of target (1, 1): r = (0, 1/2, 1/2, 1).
struct UniformCase {
  at::Tensor responses = enumerate_responses(2, 2);
  at::Tensor prompts = torch::tensor({1}, torch::kInt64).view({1, 1});
  rlhf::TargetPatternReward reward{{1, 1}};
  at::Tensor r = reward_table(reward, prompts, responses);                     // [1, 4]
  at::Tensor logp_ref = torch::full({1, 4}, std::log(0.25), torch::kFloat64);  // [1, 4]
};

TEST(ExactEval, PolicyExpectationsMatchHandComputedSums) {
  UniformCase c;
  EXPECT_EQ(c.r.sizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_DOUBLE_EQ(c.r[0][0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(c.r[0][1].item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(c.r[0][2].item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(c.r[0][3].item<double>(), 1.0);
  const at::Tensor logp = torch::tensor({0.1, 0.2, 0.3, 0.4}, torch::kFloat64).log().view({1, 4});
  const ExactPoint p = exact_point(logp, c.logp_ref, c.r);
  EXPECT_NEAR(p.reward, 0.2 * 0.5 + 0.3 * 0.5 + 0.4, 1e-12);
  EXPECT_NEAR(p.kl, 0.1 * std::log(0.4) + 0.2 * std::log(0.8) + 0.3 * std::log(1.2) + 0.4 * std::log(1.6), 1e-12);
  const ExactPoint self = exact_point(c.logp_ref, c.logp_ref, c.r);
  EXPECT_NEAR(self.reward, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(self.kl, 0.0);
  // A response the policy never emits contributes 0, not NaN.
  const at::Tensor sure = torch::tensor({-kInf, -kInf, -kInf, 0.0}, torch::kFloat64).view({1, 4});
  const ExactPoint det = exact_point(sure, c.logp_ref, c.r);
  EXPECT_DOUBLE_EQ(det.reward, 1.0);
  EXPECT_NEAR(det.kl, std::log(4.0), 1e-12);
}

TEST(ExactEval, OptimumMatchesTheClosedFormForAFactorisedReference) {
  UniformCase c;
  for (double beta : {0.05, 0.25, 1.0, 4.0}) {
    const double p = std::exp(1 / (2 * beta)) / (1 + std::exp(1 / (2 * beta)));  // each position matches
    const ExactPoint o = optimal_point(c.logp_ref, c.r, beta);
    EXPECT_NEAR(o.reward, p, 1e-12) << beta;
    EXPECT_NEAR(o.kl, 2 * (p * std::log(2 * p) + (1 - p) * std::log(2 * (1 - p))), 1e-12) << beta;
    EXPECT_DOUBLE_EQ(o.beta, beta);
  }
  // Smaller β: more reward and more KL (the frontier is monotone).
  EXPECT_GT(optimal_point(c.logp_ref, c.r, 0.1).kl, optimal_point(c.logp_ref, c.r, 1.0).kl);
}

TEST(ExactEval, SequenceLogprobsOfAGptSumToOneAndMatchAForwardPass) {
  torch::manual_seed(3);
  const models::GptConfig cfg{.n_layer = 1, .n_head = 2, .n_embd = 16, .block_size = 8, .vocab_size = 3};
  models::Gpt policy(cfg), reference(cfg);
  ExactEvalOptions o;
  o.prompts = {{1, 2}, {2, 2}};
  o.response_length = 3;
  o.betas = {0.5};
  o.batch_size = 5;  // not a divisor of 2 * 27: the last batch is short
  rlhf::TargetPatternReward reward({2, 0, 1});
  const ExactEvalResult r = exact_eval(policy, reference, reward, o);
  EXPECT_EQ(r.prompts, 2);
  EXPECT_EQ(r.responses, 27);
  EXPECT_LT(r.max_mass_error, 1e-6);
  EXPECT_GT(r.policy.kl, 0.0);
  EXPECT_NEAR(r.reference.kl, 0.0, 1e-12);
  ASSERT_EQ(r.optimum.size(), 1u);
  EXPECT_GT(r.optimum[0].reward, r.reference.reward);
  // KL(π‖π) = 0 and the policy's own reward when it is its own reference.
  const ExactEvalResult self = exact_eval(policy, policy, reward, o);
  EXPECT_NEAR(self.policy.kl, 0.0, 1e-12);
  EXPECT_NEAR(self.policy.reward, r.policy.reward, 1e-12);
  // One pair by hand: prompt (2, 2), response (2, 0, 1) = index 2*9 + 0*3 + 1 = 19, from one full forward pass.
  const at::Tensor prompts = torch::tensor({2, 2}, torch::kInt64).view({1, 2});
  const at::Tensor lp = sequence_logprobs(policy, prompts, enumerate_responses(3, 3), 7);
  torch::NoGradGuard no_grad;
  const at::Tensor seq = torch::tensor({2, 2, 2, 0, 1}, torch::kInt64).view({1, 5});
  const at::Tensor logits = policy->forward(seq).to(torch::kFloat64).log_softmax(-1);  // [1, 5, 3]
  const double want = logits[0][1][2].item<double>() + logits[0][2][0].item<double>() + logits[0][3][1].item<double>();
  EXPECT_NEAR(lp[0][19].item<double>(), want, 1e-5);
}

TEST(ExactEval, RejectsBadOptions) {
  const models::GptConfig cfg{.n_layer = 1, .n_head = 2, .n_embd = 16, .block_size = 4, .vocab_size = 3};
  models::Gpt m(cfg);
  rlhf::TargetPatternReward reward({1});
  ExactEvalOptions o;
  o.prompts = {{1, 2}};
  o.response_length = 3;  // 2 + 3 > block size 4
  EXPECT_THROW(exact_eval(m, m, reward, o), ConfigError);
  o.response_length = 2;
  o.prompts = {{1, 2}, {1}};  // ragged
  EXPECT_THROW(exact_eval(m, m, reward, o), ConfigError);
  o.prompts = {{1, 3}};  // id outside the vocabulary
  EXPECT_THROW(exact_eval(m, m, reward, o), ConfigError);
  o.prompts = {{1, 2}};
  o.betas = {0.0};
  EXPECT_THROW(exact_eval(m, m, reward, o), ConfigError);
}

}  // namespace
}  // namespace troupe::experiments
