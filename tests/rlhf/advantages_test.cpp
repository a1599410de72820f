// Hand-computed values for the advantage estimators (GAE, GRPO, Dr. GRPO, RLOO, REINFORCE++ and its baseline
// variant, ReMax), DAPO's overlong shaping, the loss aggregations and their invariance to how a minibatch is split,
// the asymmetric clip and GSPO's sequence ratio, concat_rollouts, and the config checks of the new switches.
#include "rlhf/advantages.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/config_binder.h"
#include "core/errors.h"
#include "rlhf/ppo_config.h"
#include "rlhf/ppo_math.h"
#include "rlhf/roles.h"
#include "rlhf/rollout.h"

namespace troupe::rlhf {
namespace {

torch::Tensor adv_t(std::vector<double> v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kDouble).reshape(shape);
}

void expect_values(const torch::Tensor& x, const std::vector<double>& want, double tol = 1e-6) {
  const torch::Tensor flat = x.to(torch::kDouble).contiguous().reshape({-1});
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(flat[static_cast<int64_t>(i)].item<double>(), want[i], tol) << i;
}

TEST(GroupAdvantages, GrpoDrGrpoRlooOnOneGroup) {
  // G = 4, scores (1, 0, 0, 1): mean 0.5, Bessel std sqrt(1/3) = 0.57735.
  const auto s = adv_t({1, 0, 0, 1}, {4});
  const double z = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-6);
  expect_values(group_advantages(s, 4, AdvantageEstimator::kGrpo), {z, -z, -z, z});
  expect_values(group_advantages(s, 4, AdvantageEstimator::kDrGrpo), {0.5, -0.5, -0.5, 0.5});
  // RLOO: 1 − mean(0, 0, 1) = 2/3; 0 − mean(1, 0, 1) = −2/3.
  expect_values(group_advantages(s, 4, AdvantageEstimator::kRloo), {2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3});
}

TEST(GroupAdvantages, GroupsAreIndependentAndEqualRewardsGiveZero) {
  const auto s = adv_t({3, 1, 5, 5}, {4});  // groups (3, 1) and (5, 5)
  expect_values(group_advantages(s, 2, AdvantageEstimator::kDrGrpo), {1, -1, 0, 0});
  expect_values(group_advantages(s, 2, AdvantageEstimator::kGrpo),
                {1 / (std::sqrt(2.0) + 1e-6), -1 / (std::sqrt(2.0) + 1e-6), 0, 0});
  EXPECT_THROW(group_advantages(s, 3, AdvantageEstimator::kGrpo), DataError);    // 4 rows, groups of 3
  EXPECT_THROW(group_advantages(s, 1, AdvantageEstimator::kGrpo), ConfigError);  // no group
  EXPECT_THROW(group_advantages(s, 2, AdvantageEstimator::kGae), ConfigError);
}

TEST(DiscountedReturns, HandComputed) {
  expect_values(discounted_returns(adv_t({1, 0, 2}, {1, 3}), adv_t({1, 1, 1}, {1, 3}), 0.5), {1.5, 1, 2});
  // Padding adds nothing and stays 0.
  expect_values(discounted_returns(adv_t({1, 2, 7}, {1, 3}), adv_t({1, 1, 0}, {1, 3}), 1.0), {3, 2, 0});
}

TEST(OverlongShaping, DapoSoftPunishment) {
  expect_values(overlong_shaping(adv_t({10, 16, 18, 20}, {4}), 20, 4, 1.0), {0, 0, -0.5, -1});
  expect_values(overlong_shaping(adv_t({18}, {1}), 20, 4, 2.0), {-1});
  expect_values(overlong_shaping(adv_t({20}, {1}), 20, 0, 1.0), {0});  // off
}

// Two rows: scores (1, 0); the second response has one token.
AdvantageInputs two_rows() {
  AdvantageInputs in;
  in.scores = torch::tensor({1.0f, 0.0f});
  in.kl = torch::zeros({2, 2});
  in.mask = torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}).reshape({2, 2});
  in.group_size = 2;
  in.gamma = 1.0;
  return in;
}

TEST(ComputeAdvantages, GrpoWithTheKlPenaltyInTheReward) {
  AdvantageInputs in = two_rows();
  in.kl = torch::tensor({0.1f, 0.2f, 0.3f, 0.0f}).reshape({2, 2});
  in.kl_coef = 0.5;
  // Outcomes 1 − 0.5·0.3 = 0.85 and 0 − 0.5·0.3 = −0.15: centred ±0.5, std 1/√2 -> ±0.7071 on every real token.
  const double z = 0.5 / (1 / std::sqrt(2.0) + 1e-6);
  const AdvantageOutputs out = compute_advantages(AdvantageEstimator::kGrpo, in);
  expect_values(out.advantages, {z, z, -z, 0}, 1e-5);
  EXPECT_FALSE(out.returns.defined());  // no critic targets
  expect_values(compute_advantages(AdvantageEstimator::kDrGrpo, in).advantages, {0.5, 0.5, -0.5, 0}, 1e-6);
  expect_values(compute_advantages(AdvantageEstimator::kRloo, in).advantages, {1, 1, -1, 0}, 1e-6);
}

TEST(ComputeAdvantages, ReinforcePlusPlusWhitensDiscountedReturnsOverTheBatch) {
  // Rewards [[0, 1], [0, ·]] -> returns 1, 1, 0: mean 2/3, Bessel variance 1/3.
  const double sd = std::sqrt(1.0 / 3.0 + 1e-8);
  expect_values(compute_advantages(AdvantageEstimator::kReinforcePp, two_rows()).advantages,
                {(1 - 2.0 / 3) / sd, (1 - 2.0 / 3) / sd, -2.0 / 3 / sd, 0}, 1e-5);
  // Baseline variant: scores − group mean = (0.5, −0.5) -> returns 0.5, 0.5, −0.5: the same whitened values.
  expect_values(compute_advantages(AdvantageEstimator::kReinforcePpBaseline, two_rows()).advantages,
                {(1 - 2.0 / 3) / sd, (1 - 2.0 / 3) / sd, -2.0 / 3 / sd, 0}, 1e-5);
}

TEST(ComputeAdvantages, RemaxSubtractsTheGreedyScore) {
  AdvantageInputs in = two_rows();
  in.baseline = torch::tensor({0.5f, 0.5f});
  expect_values(compute_advantages(AdvantageEstimator::kRemax, in).advantages, {0.5, 0.5, -0.5, 0});
  in.baseline = torch::Tensor();
  EXPECT_THROW(compute_advantages(AdvantageEstimator::kRemax, in), ProtocolError);
}

TEST(ComputeAdvantages, GaeIsThePpoPathUnchanged) {
  AdvantageInputs in = two_rows();
  in.values = torch::tensor({0.2f, 0.4f, 0.1f, 0.0f}).reshape({2, 2});
  in.kl = torch::tensor({0.1f, 0.2f, 0.3f, 0.0f}).reshape({2, 2});
  in.kl_coef = 0.1;
  in.lambda = 0.9;
  const AdvantageOutputs out = compute_advantages(AdvantageEstimator::kGae, in);
  const GaeOut g = gae(shape_rewards(in.scores, in.kl, in.mask, 0.1), in.values, in.mask, 1.0, 0.9);
  EXPECT_TRUE(torch::equal(out.returns, g.returns));
  EXPECT_TRUE(torch::equal(out.advantages, whiten(g.advantages, in.mask, true)));
  in.values = torch::Tensor();
  EXPECT_THROW(compute_advantages(AdvantageEstimator::kGae, in), ProtocolError);
}

TEST(LossAggregation, HandComputed) {
  const auto l = adv_t({1, 2, 3, 0}, {2, 2});
  const auto m = adv_t({1, 1, 1, 0}, {2, 2});
  const LossNormalizer norm{3, 2, 4};
  EXPECT_DOUBLE_EQ(aggregate_loss(l, m, LossAggregation::kTokenMean, norm).item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(aggregate_loss(l, m, LossAggregation::kSeqMeanTokenMean, norm).item<double>(), 2.25);
  EXPECT_DOUBLE_EQ(aggregate_loss(l, m, LossAggregation::kSeqMeanTokenSumNorm, norm).item<double>(), 0.75);
}

TEST(LossAggregation, ShardsOfAMinibatchAddUpToTheWholeLossAndGradient) {
  // Four rows of different lengths, split 1 + 3 (micro-batches, or ranks): the sum of the shard losses and of
  // their gradients equals the whole minibatch's, for every aggregation.
  const auto mask = adv_t({1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0}, {4, 4});
  const LossNormalizer norm{mask.sum().item<double>(), 4, 4};
  for (LossAggregation agg :
       {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenMean, LossAggregation::kSeqMeanTokenSumNorm}) {
    auto x = torch::linspace(-1, 2, 16, torch::kDouble).reshape({4, 4}).requires_grad_(true);
    const auto whole = aggregate_loss(x * x, mask, agg, norm);
    const auto g_whole = torch::autograd::grad({whole}, {x})[0];
    auto a = aggregate_loss(x.slice(0, 0, 1) * x.slice(0, 0, 1), mask.slice(0, 0, 1), agg, norm);
    auto b = aggregate_loss(x.slice(0, 1, 4) * x.slice(0, 1, 4), mask.slice(0, 1, 4), agg, norm);
    const auto g_parts = torch::autograd::grad({a + b}, {x})[0];
    EXPECT_NEAR((a + b).item<double>(), whole.item<double>(), 1e-12) << core::enum_name(agg);
    EXPECT_TRUE(torch::allclose(g_parts, g_whole, 0, 1e-12)) << core::enum_name(agg);
  }
}

TEST(PolicyLoss, AsymmetricClipRaisesOnlyTheUpperBound) {
  const auto m = adv_t({1, 1}, {1, 2});
  const auto old = adv_t({0, 0}, {1, 2});
  const auto logp = adv_t({std::log(1.25), std::log(0.7)}, {1, 2});
  const auto adv = adv_t({1, -1}, {1, 2});
  // ε 0.2: ratio 1.25 with A = 1 is clipped to 1.2; ratio 0.7 with A = −1 is clipped at 0.8.
  expect_values(policy_loss(logp, old, adv, m, 0.2).per_token, {-1.2, 0.8}, 1e-9);
  // ε_high 0.28: 1.25 < 1.28 is no longer clipped; the lower bound stays 0.8.
  expect_values(policy_loss(logp, old, adv, m, 0.2, 0.0, 0.28).per_token, {-1.25, 0.8}, 1e-9);
  EXPECT_THROW(policy_loss(logp, old, adv, m, 0.2, 0.0, -0.1), ConfigError);
}

TEST(PolicyLoss, AFarDriftedPolicyGivesFiniteLossAndGradient) {
  // log-ratio 200: e^200 would be inf, and −0·inf NaN where the advantage is 0 (seen with GRPO on all-equal rewards).
  auto logp = adv_t({200.0, 200.0, -200.0}, {1, 3}).requires_grad_(true);
  const auto out =
      policy_loss(logp, adv_t({0, 0, 0}, {1, 3}), adv_t({0, -1, 1}, {1, 3}), adv_t({1, 1, 1}, {1, 3}), 0.2);
  EXPECT_TRUE(torch::isfinite(out.per_token).all().item<bool>());
  out.per_token.sum().backward();
  EXPECT_TRUE(torch::isfinite(logp.grad()).all().item<bool>());
  EXPECT_NEAR(out.ratio[0][0].item<double>(), std::exp(20.0), 1e-3 * std::exp(20.0));
}

TEST(PolicyLoss, GspoUsesTheLengthNormalisedSequenceRatio) {
  const auto m = adv_t({1, 1, 1, 0}, {2, 2});
  const auto old = adv_t({0, 0, 0, 0}, {2, 2});
  auto logp = adv_t({0.2, 0.4, 0.1, 5.0}, {2, 2}).requires_grad_(true);  // the padding value must not matter
  const auto adv = adv_t({1, 1, -1, 0}, {2, 2});
  const PolicyLossOut out = policy_loss(logp, old, adv, m, 10.0, 0.0, 0.0, ImportanceRatio::kSequence);
  const double s0 = std::exp(0.3), s1 = std::exp(0.1);
  expect_values(out.ratio.masked_select(m > 0), {s0, s0, s1}, 1e-12);
  // Unclipped: loss_t = −A·s_b, gradient −A·s_b·∂logp_t.
  out.per_token.sum().backward();
  expect_values(logp.grad(), {-s0, -s0, s1, 0}, 1e-12);
  EXPECT_THROW(policy_loss(logp, old, adv, m, 0.2, 2.0, 0.0, ImportanceRatio::kSequence), ConfigError);
}

TEST(ConcatRollouts, RepadsPromptsLeftAndResponsesRight) {
  Rollout a, b;
  a.prompt_length = 2;  // prompt (7, 8), response (1, 2, 3)
  a.sequences = torch::tensor({7, 8, 1, 2, 3}, torch::kLong).reshape({1, 5});
  a.attention_mask = torch::ones({1, 5}, torch::kLong);
  a.response_mask = torch::ones({1, 3});
  a.sample_logprobs = torch::tensor({-1.0f, -2.0f, -3.0f}).reshape({1, 3});
  a.eos = torch::tensor({1.0f});
  b.prompt_length = 3;  // prompt (0 pad, 5, 6), response (4)
  b.sequences = torch::tensor({0, 5, 6, 4}, torch::kLong).reshape({1, 4});
  b.attention_mask = torch::tensor({0, 1, 1, 1}, torch::kLong).reshape({1, 4});
  b.response_mask = torch::ones({1, 1});
  b.sample_logprobs = torch::tensor({-0.5f}).reshape({1, 1});
  b.eos = torch::tensor({0.0f});
  const Rollout c = concat_rollouts({a, b}, 0);
  EXPECT_EQ(c.prompt_length, 3);
  expect_values(c.sequences, {0, 7, 8, 1, 2, 3, 0, 5, 6, 4, 0, 0});
  expect_values(c.attention_mask, {0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0});
  expect_values(c.response_mask, {1, 1, 1, 1, 0, 0});
  expect_values(c.sample_logprobs, {-1, -2, -3, -0.5, 0, 0});
  expect_values(c.eos, {1, 0});
  expect_values(select_rows(c, torch::tensor({1}, torch::kLong)).sequences, {0, 5, 6, 4, 0, 0});
  // Positions follow the real tokens whatever the padding.
  expect_values(positions_of(c.attention_mask).slice(1, 1, 4), {0, 1, 2, 0, 1, 2});
}

void validate_ppo(const PpoConfig& c) {
  core::OriginMap origins;
  core::ConfigValidator v(origins, "");
  c.validate(v);
}

std::string validation_error(const PpoConfig& c) {
  try {
    validate_ppo(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(AlgorithmConfig, ChecksTheNewSwitches) {
  PpoConfig c;
  c.reward.function.type = RewardFunctionType::kPattern;
  c.reward.function.pattern = {1};
  c.generation.do_sample = true;
  EXPECT_EQ(validation_error(c), "");
  c.ppo.advantage_estimator = AdvantageEstimator::kGrpo;
  EXPECT_NE(validation_error(c).find("ppo.group_size"), std::string::npos) << validation_error(c);
  c.ppo.group_size = 4;
  c.ppo.minibatch = c.ppo.rollout_batch * 4;  // sequences, not prompts
  EXPECT_EQ(validation_error(c), "");
  c.ppo.policy_loss = ImportanceRatio::kSequence;
  c.ppo.dual_clip = 3.0;
  EXPECT_NE(validation_error(c).find("ppo.dual_clip"), std::string::npos);
  c.ppo.dual_clip = 0.0;
  c.placement.colocate = {"critic,reward"};
  EXPECT_NE(validation_error(c).find("no critic"), std::string::npos) << validation_error(c);
  c.placement.colocate = {};
  c.ppo.advantage_estimator = AdvantageEstimator::kRemax;
  c.generation.do_sample = false;
  EXPECT_NE(validation_error(c).find("generation.do_sample"), std::string::npos);
  c.generation.do_sample = true;
  c.ppo.overlong.buffer = c.generation.max_new_tokens + 1;
  EXPECT_NE(validation_error(c).find("ppo.overlong.buffer"), std::string::npos);
}

// fault: a hang timeout shorter than two heartbeats would call every worker frozen; negative restarts are meaningless.
TEST(FaultConfig, HangTimeoutCoversTwoHeartbeatsAndRestartsAreCounted) {
  PpoConfig c;
  c.reward.function.type = RewardFunctionType::kPattern;
  c.reward.function.pattern = {1};
  EXPECT_EQ(c.fault.tolerance, FaultTolerance::kFail);
  EXPECT_EQ(validation_error(c), "");
  c.placement.heartbeat_s = 2;
  c.fault.hang_timeout_s = 3;
  EXPECT_NE(validation_error(c).find("fault.hang_timeout_s"), std::string::npos) << validation_error(c);
  c.fault.hang_timeout_s = 4;
  EXPECT_EQ(validation_error(c), "");
  c.fault.max_restarts = -1;
  EXPECT_NE(validation_error(c).find("max_restarts"), std::string::npos) << validation_error(c);
}

TEST(PlacementConfig, NonLoopbackBindNeedsCurveOrAnExplicitAllowance) {
  PpoConfig c;
  c.reward.function.type = RewardFunctionType::kPattern;
  c.reward.function.pattern = {1};
  c.placement.mode = PlacementMode::kProcesses;
  c.placement.transport = WorkerTransport::kTcp;
  EXPECT_TRUE(c.placement.curve_enabled());  // auto = on for tcp
  c.placement.bind_host = "0.0.0.0";
  EXPECT_EQ(validation_error(c), "");
  c.placement.curve = CurveMode::kOff;
  EXPECT_NE(validation_error(c).find("placement.bind_host"), std::string::npos) << validation_error(c);
  c.placement.allow_insecure_bind = true;
  EXPECT_EQ(validation_error(c), "");
  c.placement.allow_insecure_bind = false;
  for (const std::string host : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) {
    c.placement.bind_host = host;
    EXPECT_EQ(validation_error(c), "") << host;
  }
  for (const std::string host : {"10.0.0.1", "127.0.0.1.example.com", "1127.0.0.1", "*"}) {
    c.placement.bind_host = host;
    EXPECT_NE(validation_error(c), "") << host;
  }
  c.placement.transport = WorkerTransport::kIpc;
  c.placement.curve = CurveMode::kAuto;
  EXPECT_FALSE(c.placement.curve_enabled());  // auto = off for ipc
  c.placement.curve = CurveMode::kOn;
  EXPECT_TRUE(c.placement.curve_enabled());
  c.placement.mode = PlacementMode::kInproc;
  EXPECT_FALSE(c.placement.curve_enabled());
  EXPECT_NE(validation_error(c).find("placement.curve"), std::string::npos) << validation_error(c);
}

TEST(AlgorithmConfig, CriticFreeRunsStartNoCritic) {
  PpoConfig c;
  EXPECT_EQ(active_role_names(c), (std::vector<std::string>{"actor", "critic", "reward", "reference"}));
  for (AdvantageEstimator e :
       {AdvantageEstimator::kGrpo, AdvantageEstimator::kDrGrpo, AdvantageEstimator::kRloo,
        AdvantageEstimator::kReinforcePp, AdvantageEstimator::kReinforcePpBaseline, AdvantageEstimator::kRemax}) {
    c.ppo.advantage_estimator = e;
    EXPECT_EQ(active_role_names(c), (std::vector<std::string>{"actor", "reward", "reference"})) << core::enum_name(e);
  }
}

}  // namespace
}  // namespace troupe::rlhf
