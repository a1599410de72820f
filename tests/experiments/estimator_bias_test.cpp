// The expected policy gradient of each critic-free estimator against the exact gradient, on the tiny-vocabulary task
// where every response can be enumerated (experiments/exact_eval.h): V = 3 tokens, responses of L = 2 tokens (9 of
// them), one prompt, the pattern reward (0, 1/2 or 1), a small random GPT.
//
// Exact side: ∇J = Σ_y π(y) r(y) ∇log π(y) from the 9 per-response gradients, and the exact expectation of each
// estimator's gradient by enumerating all 9^G groups of G samples and applying the real group_advantages().
// Known answers: RLOO and ReMax are unbiased (E = ∇J); Dr. GRPO's group mean contains the sample itself, so
// E = (G − 1)/G·∇J; GRPO's std normalisation has no closed form and is compared with its enumeration.
//
// Monte-Carlo side: the production path — models::generate sampling, compute_advantages, actor_loss at ratio 1 and
// backward — averaged over independent batches. The mean gradient, projected on ∇J and on random directions, must
// lie within 4.5 standard errors of the exact expectation of that estimator; and the test has power: Dr. GRPO's
// Monte-Carlo mean is more than 4.5 standard errors away from the unbiased ∇J.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "core/config_binder.h"
#include "core/seeding.h"
#include "experiments/exact_eval.h"
#include "models/generation.h"
#include "models/gpt.h"
#include "rlhf/advantages.h"
#include "rlhf/ppo_math.h"
#include "rlhf/reward_functions.h"
#include "rlhf/rollout.h"

namespace troupe::experiments {
namespace {

using rlhf::AdvantageEstimator;

constexpr int64_t kBiasVocab = 3, kBiasLength = 2, kGroup = 4;

class EstimatorBias : public ::testing::Test {
 protected:
  void SetUp() override {
    core::seed_torch(11);
    const models::GptConfig c{.n_layer = 1, .n_head = 1, .n_embd = 8, .block_size = 4, .vocab_size = kBiasVocab};
    model_ = models::Gpt(c);
    model_->eval();
    {
      // A sharper, non-uniform starting policy than the near-uniform random init.
      torch::NoGradGuard no_grad;
      for (auto& p : model_->parameters()) p.mul_(4.0);
    }
    for (const auto& p : model_->parameters()) params_.push_back(p);
    responses_ = enumerate_responses(kBiasVocab, kBiasLength);  // [9, 2]
    const int64_t M = responses_.size(0);
    rlhf::SequenceBatch all = batch_of(responses_);
    const at::Tensor logp = rlhf::response_logprobs(model_, all).logprobs.sum(1);  // [9], with grad
    pi_ = torch::exp(logp.detach()).to(torch::kDouble);
    ASSERT_NEAR(pi_.sum().item<double>(), 1.0, 1e-5);
    std::vector<at::Tensor> rows;
    for (int64_t y = 0; y < M; ++y) rows.push_back(flat(torch::autograd::grad({logp[y]}, params_, {}, true)));
    grads_ = torch::stack(rows);  // [9, D] ∇log π(y)
    reward_ = std::make_unique<rlhf::TargetPatternReward>(std::vector<int64_t>{2, 1});
    std::vector<double> r;
    for (int64_t y = 0; y < M; ++y) r.push_back(score(responses_[y]));
    r_ = torch::tensor(r, torch::kDouble);
    grad_j_ = torch::matmul(pi_ * r_, grads_);  // ∇J
    // The greedy response (ReMax's baseline): the argmax token at each step.
    models::GenerationConfig g;
    g.max_new_tokens = kBiasLength;
    const auto greedy = models::generate(model_, {{kPrompt}}, g).tokens[0];
    greedy_score_ = score(torch::tensor(greedy, torch::kLong));
  }

  static constexpr int64_t kPrompt = 0;

  double score(const at::Tensor& response) const {
    rlhf::RewardSample s;
    const at::Tensor r = response.contiguous();
    s.response.assign(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
    return reward_->score(s);
  }

  static at::Tensor flat(const std::vector<at::Tensor>& gs) {
    std::vector<at::Tensor> parts;
    for (const auto& g : gs) parts.push_back(g.reshape({-1}).to(torch::kDouble));
    return torch::cat(parts);
  }

  // The prompt (one token) followed by each response.
  rlhf::SequenceBatch batch_of(const at::Tensor& responses) const {
    const int64_t B = responses.size(0);
    rlhf::SequenceBatch b;
    b.sequences = torch::cat({torch::full({B, 1}, kPrompt, torch::kLong), responses}, 1);
    b.attention_mask = torch::ones({B, 1 + kBiasLength}, torch::kLong);
    b.response_mask = torch::ones({B, kBiasLength});
    b.prompt_length = 1;
    return b;
  }

  // E[(1/G) Σ_i A_i ∇log π(y_i)] exactly, by enumerating all 9^G groups.
  at::Tensor exact_expectation(AdvantageEstimator e) const {
    const int64_t M = responses_.size(0);
    const int64_t n = static_cast<int64_t>(std::pow(M, kGroup));
    at::Tensor idx = torch::empty({n, kGroup}, torch::kLong);  // group g: digits of g in base M
    at::Tensor g = torch::arange(n, torch::kLong);
    for (int64_t i = kGroup - 1; i >= 0; --i) {
      idx.select(1, i).copy_(g % M);
      g = g.div(M, "floor");
    }
    const at::Tensor prob = pi_.index({idx}).prod(1);  // [n]
    const at::Tensor scores = r_.index({idx}).reshape({-1});
    at::Tensor adv;
    if (e == AdvantageEstimator::kRemax) {
      adv = (scores - greedy_score_).reshape({n, kGroup});
    } else {
      adv = rlhf::group_advantages(scores, kGroup, e).reshape({n, kGroup});
    }
    // Coefficient of each response's gradient: c_y = Σ_groups P(group) (1/G) Σ_{i: y_i = y} A_i.
    const at::Tensor c = torch::zeros({M}, torch::kDouble)
                             .index_add_(0, idx.reshape({-1}), (prob.unsqueeze(1) * adv / kGroup).reshape({-1}));
    return torch::matmul(c, grads_);
  }

  // Per-batch gradient estimates of −∇loss through the production path, scaled by L (token-mean aggregation
  // divides by the L tokens of each response): [batches, D].
  at::Tensor monte_carlo(AdvantageEstimator e, int64_t batches, int64_t groups) {
    std::vector<at::Tensor> out;
    models::GenerationConfig g;
    g.max_new_tokens = kBiasLength;
    g.do_sample = true;
    const int64_t B = groups * kGroup;
    for (int64_t k = 0; k < batches; ++k) {
      const auto ids = torch::full({B, 1}, kPrompt, torch::kLong);
      const rlhf::Rollout r =
          rlhf::generate_rollout(model_, ids, torch::ones({B, 1}, torch::kLong), g, 1000 + static_cast<uint64_t>(k));
      const at::Tensor responses = r.sequences.slice(1, 1);
      std::vector<double> s;
      for (int64_t b = 0; b < B; ++b) s.push_back(score(responses[b]));
      const at::Tensor logp = rlhf::response_logprobs(model_, r).logprobs;
      rlhf::AdvantageInputs in;
      in.scores = torch::tensor(s, torch::kFloat32);
      in.kl = torch::zeros({B, kBiasLength});
      in.mask = r.response_mask;
      in.group_size = kGroup;
      in.baseline = torch::full({B}, greedy_score_, torch::kFloat32);
      const rlhf::AdvantageOutputs adv = rlhf::compute_advantages(e, in);
      const rlhf::LossNormalizer norm{static_cast<double>(B * kBiasLength), static_cast<double>(B),
                                      static_cast<double>(kBiasLength)};
      const rlhf::ActorLossOut a =
          rlhf::actor_loss(logp, at::Tensor(), logp.detach(), logp.detach(), adv.advantages, r.response_mask, norm, {});
      out.push_back(-flat(torch::autograd::grad({a.loss}, params_)) * static_cast<double>(kBiasLength));
    }
    return torch::stack(out);
  }

  // max |z| over the projections on ∇J and four random directions of (Monte-Carlo mean − target).
  double max_z(const at::Tensor& estimates, const at::Tensor& target) const {
    at::Tensor dirs = torch::cat({(grad_j_ / grad_j_.norm()).unsqueeze(0),
                                  torch::randn({4, grad_j_.numel()}, torch::TensorOptions().dtype(torch::kDouble))});
    const at::Tensor proj = torch::matmul(estimates, dirs.t());  // [batches, 5]
    const double n = static_cast<double>(estimates.size(0));
    const at::Tensor z = (proj.mean(0) - torch::matmul(dirs, target)) / (proj.std(0) / std::sqrt(n));
    return z.abs().max().item<double>();
  }

  models::Gpt model_{nullptr};
  std::vector<at::Tensor> params_;
  at::Tensor responses_, pi_, grads_, r_, grad_j_;
  std::unique_ptr<rlhf::TargetPatternReward> reward_;
  double greedy_score_ = 0;
};

// The per-response gradients come from the float32 model, so the identities hold to float32 accuracy (measured
// ~3e-4 of |∇J|); the alternatives they exclude are 25% away.
TEST_F(EstimatorBias, ExactExpectationsHaveTheKnownRelationToTheTrueGradient) {
  const double scale = grad_j_.norm().item<double>();
  ASSERT_GT(scale, 1e-3);
  const auto distance = [&](const at::Tensor& a, const at::Tensor& b) { return (a - b).norm().item<double>() / scale; };
  const double shrink = static_cast<double>(kGroup - 1) / kGroup;
  const at::Tensor rloo = exact_expectation(AdvantageEstimator::kRloo);
  const at::Tensor remax = exact_expectation(AdvantageEstimator::kRemax);
  const at::Tensor dr = exact_expectation(AdvantageEstimator::kDrGrpo);
  EXPECT_LT(distance(rloo, grad_j_), 2e-3);
  EXPECT_LT(distance(remax, grad_j_), 2e-3);
  EXPECT_LT(distance(dr, shrink * grad_j_), 2e-3);
  EXPECT_GT(distance(dr, grad_j_), 0.2);  // Dr. GRPO is biased (towards 0) by 1/G
  // GRPO: a positive multiple of ∇J only approximately — its std normalisation reweights groups.
  const at::Tensor grpo = exact_expectation(AdvantageEstimator::kGrpo);
  EXPECT_GT(torch::dot(grpo, grad_j_).item<double>() / (grpo.norm().item<double>() * scale), 0.5);
}

TEST_F(EstimatorBias, MonteCarloMeansMatchTheExactExpectationsWithinTheirConfidenceIntervals) {
  torch::manual_seed(5);
  for (AdvantageEstimator e : {AdvantageEstimator::kGrpo, AdvantageEstimator::kDrGrpo, AdvantageEstimator::kRloo,
                               AdvantageEstimator::kRemax}) {
    const at::Tensor mc = monte_carlo(e, 200, 16);
    const double z = max_z(mc, exact_expectation(e));
    std::cout << core::enum_name(e) << ": max |z| against its exact expectation " << z << "\n";
    EXPECT_LT(z, 4.5) << core::enum_name(e) << ": Monte-Carlo mean outside the interval around the exact value";
    if (e == AdvantageEstimator::kDrGrpo) {
      // Power: the same samples reject the unbiased gradient, (G − 1)/G = 3/4 of which Dr. GRPO estimates.
      const double z_true = max_z(mc, grad_j_);
      std::cout << "dr_grpo: max |z| against the true gradient " << z_true << "\n";
      EXPECT_GT(z_true, 4.5) << "the test cannot tell a 25% bias";
    }
  }
}

}  // namespace
}  // namespace troupe::experiments
