// Hand-computed values for the PPO math: masked statistics, whitening, KL estimators, reward shaping, GAE, the
// clipped policy and value losses, and the logit helpers.
#include "rlhf/ppo_math.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/config_binder.h"
#include "core/errors.h"

namespace troupe::rlhf {
namespace {

torch::Tensor d(std::vector<double> v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kDouble).reshape(shape);
}

double val(const torch::Tensor& x, int64_t b, int64_t t) { return x[b][t].item<double>(); }

// x = [[1, 2, 3], [4, 5, 6]] with mask [[1, 1, 0], [1, 0, 0]]: the real values are 1, 2, 4.
const std::vector<double> kX = {1, 2, 3, 4, 5, 6};
const std::vector<double> kMask = {1, 1, 0, 1, 0, 0};

TEST(MaskedStats, SumMeanAndMoments) {
  const auto x = d(kX, {2, 3});
  const auto mask = d(kMask, {2, 3});
  EXPECT_DOUBLE_EQ(masked_sum(x, mask).item<double>(), 7.0);
  EXPECT_DOUBLE_EQ(masked_mean(x, mask).item<double>(), 7.0 / 3.0);
  const MaskedMoments m = masked_moments(x, mask);
  EXPECT_DOUBLE_EQ(m.sum, 7.0);
  EXPECT_DOUBLE_EQ(m.sum_sq, 21.0);  // 1 + 4 + 16
  EXPECT_DOUBLE_EQ(m.count, 3.0);
  // Deviations from 7/3: −4/3, −1/3, 5/3; squares sum to 42/9.
  EXPECT_NEAR(m.variance(/*unbiased=*/false), 42.0 / 9.0 / 3.0, 1e-12);  // 14/9
  EXPECT_NEAR(m.variance(/*unbiased=*/true), 42.0 / 9.0 / 2.0, 1e-12);   // 7/3
}

TEST(MaskedStats, MomentsAddUpAcrossShards) {
  // Two "ranks" holding one row each must agree with the moments of the whole batch.
  const auto x = d(kX, {2, 3});
  const auto mask = d(kMask, {2, 3});
  MaskedMoments a = masked_moments(x.slice(0, 0, 1), mask.slice(0, 0, 1));
  a += masked_moments(x.slice(0, 1, 2), mask.slice(0, 1, 2));
  EXPECT_DOUBLE_EQ(a.sum, 7.0);
  EXPECT_DOUBLE_EQ(a.sum_sq, 21.0);
  EXPECT_DOUBLE_EQ(a.count, 3.0);
}

TEST(MaskedStats, MeanGradientOnlyReachesRealTokens) {
  auto x = d(kX, {2, 3}).requires_grad_(true);
  masked_mean(x, d(kMask, {2, 3})).backward();
  const double g = 1.0 / 3.0;
  EXPECT_TRUE(torch::allclose(x.grad(), d({g, g, 0, g, 0, 0}, {2, 3})));
}

TEST(MaskedStats, EmptyMaskIsAnError) {
  const auto x = d(kX, {2, 3});
  const auto zeros = torch::zeros({2, 3}, torch::kDouble);
  EXPECT_THROW(masked_mean(x, zeros), DataError);
  EXPECT_THROW(masked_moments(x, zeros).variance(), DataError);
  EXPECT_THROW(masked_sum(x, torch::ones({3, 2}, torch::kDouble)), DataError);  // shape mismatch
}

TEST(Whiten, LocalMomentsUseBesselCorrectedVariance) {
  // Values 1, 2, 4: mean 7/3, unbiased variance 7/3, so whiten(x) = (x − 7/3) / sqrt(7/3).
  auto x = d(kX, {2, 3});
  const auto mask = d(kMask, {2, 3});
  const double s = std::sqrt(7.0 / 3.0 + 1e-8);
  const auto w = whiten(x, mask);
  EXPECT_NEAR(val(w, 0, 0), (1 - 7.0 / 3.0) / s, 1e-12);  // −0.872872
  EXPECT_NEAR(val(w, 0, 1), (2 - 7.0 / 3.0) / s, 1e-12);  // −0.218218
  EXPECT_NEAR(val(w, 1, 0), (4 - 7.0 / 3.0) / s, 1e-12);  // 1.091089
  EXPECT_NEAR(val(w, 0, 0), -0.872872, 1e-6);
  for (auto [b, t] : std::vector<std::pair<int, int>>{{0, 2}, {1, 1}, {1, 2}}) EXPECT_EQ(val(w, b, t), 0.0);
  // Whitened real tokens: mean 0, unbiased variance 1.
  const MaskedMoments m = masked_moments(w, mask);
  EXPECT_NEAR(m.mean(), 0.0, 1e-12);
  EXPECT_NEAR(m.variance(), 1.0, 1e-7);
  // Padding values do not leak into the statistics.
  x[1][2] = 1000.0;
  EXPECT_TRUE(torch::allclose(whiten(x, mask), w));
  // shift_mean = false adds the mean back.
  const auto kept = whiten(x, mask, /*shift_mean=*/false);
  EXPECT_NEAR(val(kept, 0, 0), (1 - 7.0 / 3.0) / s + 7.0 / 3.0, 1e-12);
  EXPECT_EQ(val(kept, 1, 2), 0.0);
}

TEST(Whiten, GivenMomentsAndTooFewTokens) {
  const auto x = d(kX, {2, 3});
  const auto mask = d(kMask, {2, 3});
  const auto w = whiten(x, mask, /*mean=*/1.0, /*var=*/4.0);  // (x − 1) / sqrt(4 + 1e-8) ≈ (x − 1) / 2
  const double s = std::sqrt(4.0 + 1e-8);
  EXPECT_DOUBLE_EQ(val(w, 0, 0), 0.0);
  EXPECT_DOUBLE_EQ(val(w, 0, 1), 1.0 / s);
  EXPECT_DOUBLE_EQ(val(w, 1, 0), 3.0 / s);
  EXPECT_NEAR(val(w, 1, 0), 1.5, 1e-8);
  EXPECT_EQ(val(w, 0, 2), 0.0);
  EXPECT_THROW(whiten(x, d({1, 0, 0, 0, 0, 0}, {2, 3})), DataError);  // one token: no unbiased variance
}

TEST(KlEstimators, K3IsBoundedFarFromTheReference) {
  // lr = logp − ref of −50 would give e^{50}: clamped to the bound 10, with no gradient there (veRL's low_var_kl).
  auto logp = torch::tensor({-50.0, 30.0, 0.5}, torch::kDouble).reshape({1, 3}).requires_grad_(true);
  const auto k3 = kl_estimate(logp, torch::zeros({1, 3}, torch::kDouble), KlEstimator::kK3);
  EXPECT_DOUBLE_EQ(k3[0][0].item<double>(), 10.0);
  EXPECT_DOUBLE_EQ(k3[0][1].item<double>(), 10.0);  // e^{−20} − 1 + 20 ≈ 19 -> 10
  EXPECT_NEAR(k3[0][2].item<double>(), std::exp(-0.5) - 1 + 0.5, 1e-12);
  k3.sum().backward();
  EXPECT_TRUE(torch::isfinite(logp.grad()).all().item<bool>());
  EXPECT_EQ(logp.grad()[0][0].item<double>(), 0.0);
}

TEST(KlEstimators, KnownLogRatios) {
  // lr = logp − ref_logp ∈ {−1, 0, 0.5, 1, 2}.
  const auto ref = d({-1, -2, -1.5, -3, -2}, {1, 5});
  const auto logp = ref + d({-1, 0, 0.5, 1, 2}, {1, 5});
  const auto k1 = kl_estimate(logp, ref, KlEstimator::kK1);
  const auto k2 = kl_estimate(logp, ref, KlEstimator::kK2);
  const auto k3 = kl_estimate(logp, ref, KlEstimator::kK3);
  const std::vector<double> lr = {-1, 0, 0.5, 1, 2};
  const std::vector<double> expect_k2 = {0.5, 0, 0.125, 0.5, 2};
  // k3 = e^{−lr} − 1 + lr: e − 2, 0, e^{−0.5} − 0.5, e^{−1}, e^{−2} + 1.
  const std::vector<double> expect_k3 = {0.718281828, 0.0, 0.106530660, 0.367879441, 1.135335283};
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(val(k1, 0, i), lr[i], 1e-12) << i;
    EXPECT_NEAR(val(k2, 0, i), expect_k2[i], 1e-12) << i;
    EXPECT_NEAR(val(k3, 0, i), expect_k3[i], 1e-9) << i;
  }
}

TEST(KlEstimators, K1AndK3AreUnbiasedUnderThePolicy) {
  // π = (0.5, 0.3, 0.2), π_ref = (0.2, 0.3, 0.5): KL(π‖π_ref) = 0.5 ln 2.5 + 0.2 ln 0.4 = 0.3 ln 2.5 = 0.274887.
  // Weighting each outcome by π gives the expectation exactly (E_π[π_ref/π] = 1 makes k3's extra term vanish).
  const auto p = d({0.5, 0.3, 0.2}, {1, 3});
  const auto q = d({0.2, 0.3, 0.5}, {1, 3});
  const double kl = 0.3 * std::log(2.5);
  EXPECT_NEAR(kl, 0.274887, 1e-6);
  for (auto e : {KlEstimator::kK1, KlEstimator::kK3})
    EXPECT_NEAR((p * kl_estimate(p.log(), q.log(), e)).sum().item<double>(), kl, 1e-12);
  // k2 is biased: lr = (ln 2.5, 0, −ln 2.5), so Σ π ½ lr² = ½ (0.5 + 0.2) ln²2.5 = 0.35 · 0.839589 = 0.293856.
  EXPECT_NEAR((p * kl_estimate(p.log(), q.log(), KlEstimator::kK2)).sum().item<double>(),
              0.35 * std::pow(std::log(2.5), 2), 1e-12);
}

TEST(KlEstimators, ConfigNames) {
  EXPECT_EQ(core::parse_enum<KlEstimator>("k1"), KlEstimator::kK1);
  EXPECT_EQ(core::parse_enum<KlEstimator>("k2"), KlEstimator::kK2);
  EXPECT_EQ(core::parse_enum<KlEstimator>("k3"), KlEstimator::kK3);
  EXPECT_FALSE(core::parse_enum<KlEstimator>("kl"));
  EXPECT_EQ(core::enum_name(KlEstimator::kK3), "k3");
  EXPECT_EQ(core::enum_choices<KlEstimator>(), "k1, k2 or k3");
}

TEST(ShapeRewards, ScoreOnLastRealTokenAndKlPenaltyEverywhere) {
  // Row 0 ended with EOS after 2 tokens (padding after it); row 1 was truncated at T = 3. Either way the score
  // goes on the last generated token: index 1 and index 2.
  const auto scores = torch::tensor({2.0, -1.0}, torch::kDouble);
  const auto kl = d({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3});
  const auto mask = d({1, 1, 0, 1, 1, 1}, {2, 3});
  const auto last = last_token_index(mask);
  EXPECT_EQ(last.scalar_type(), torch::kLong);
  EXPECT_EQ(last[0].item<int64_t>(), 1);
  EXPECT_EQ(last[1].item<int64_t>(), 2);
  const auto r = shape_rewards(scores, kl, mask, /*kl_coef=*/0.5);
  // Row 0: (−0.05, −0.1 + 2, 0); row 1: (−0.2, −0.25, −0.3 − 1).
  const auto expected = d({-0.05, 1.9, 0.0, -0.2, -0.25, -1.3}, {2, 3});
  EXPECT_TRUE(torch::allclose(r, expected, 0, 1e-12)) << r;
  EXPECT_FALSE(r.requires_grad());
}

TEST(ShapeRewards, SameLengthSamePlacementWhetherEosOrTruncated) {
  // A 3-token response that ended with EOS (T = 4, one pad) and one cut at T = 3 put the score on index 2.
  const auto eos = shape_rewards(torch::tensor({1.0}, torch::kDouble), torch::zeros({1, 4}, torch::kDouble),
                                 d({1, 1, 1, 0}, {1, 4}), 0.1);
  const auto cut = shape_rewards(torch::tensor({1.0}, torch::kDouble), torch::zeros({1, 3}, torch::kDouble),
                                 d({1, 1, 1}, {1, 3}), 0.1);
  EXPECT_TRUE(torch::equal(eos.slice(1, 0, 3), cut));
  EXPECT_EQ(val(cut, 0, 2), 1.0);
}

TEST(ShapeRewards, RejectsEmptyRowsAndHolesInTheMask) {
  const auto kl = torch::zeros({2, 3}, torch::kDouble);
  const auto scores = torch::ones({2}, torch::kDouble);
  EXPECT_THROW(shape_rewards(scores, kl, d({1, 1, 0, 0, 0, 0}, {2, 3}), 0.1), DataError);
  EXPECT_THROW(last_token_index(d({1, 0, 1, 1, 1, 1}, {2, 3})), DataError);
  EXPECT_THROW(shape_rewards(torch::ones({3}, torch::kDouble), kl, torch::ones({2, 3}, torch::kDouble), 0.1),
               DataError);
}

TEST(Gae, HandComputedRows) {
  // γ = 0.9, λ = 0.8 (γλ = 0.72).
  // Row 0, 3 real tokens, r = (0.1, −0.2, 1.0), V = (0.5, 0.4, 0.3):
  //   A_2 = 1.0 − 0.3 = 0.7
  //   A_1 = (−0.2 + 0.9·0.3 − 0.4) + 0.72·0.7 = −0.33 + 0.504 = 0.174
  //   A_0 = (0.1 + 0.9·0.4 − 0.5) + 0.72·0.174 = −0.04 + 0.12528 = 0.08528
  // Row 1, 2 real tokens then padding holding garbage (r = 7, V = 9) that must not leak:
  //   A_1 = 2.0 − 0.5 = 1.5 (the episode ends here: no V_2)
  //   A_0 = (0 + 0.9·0.5 − 1.0) + 0.72·1.5 = −0.55 + 1.08 = 0.53
  const auto r = d({0.1, -0.2, 1.0, 0.0, 2.0, 7.0}, {2, 3});
  auto v = d({0.5, 0.4, 0.3, 1.0, 0.5, 9.0}, {2, 3}).requires_grad_(true);
  const auto mask = d({1, 1, 1, 1, 1, 0}, {2, 3});
  const GaeOut out = gae(r, v, mask, 0.9, 0.8);
  EXPECT_TRUE(torch::allclose(out.advantages, d({0.08528, 0.174, 0.7, 0.53, 1.5, 0.0}, {2, 3}), 0, 1e-12))
      << out.advantages;
  EXPECT_TRUE(torch::allclose(out.returns, d({0.58528, 0.574, 1.0, 1.53, 2.0, 0.0}, {2, 3}), 0, 1e-12)) << out.returns;
  EXPECT_FALSE(out.advantages.requires_grad());
  EXPECT_FALSE(out.returns.requires_grad());
}

TEST(Gae, GammaLambdaOneGivesRewardToGoMinusValue) {
  // γ = λ = 1: A_t = Σ_{s≥t} r_s − V_t and the returns are the rewards-to-go (1 + 2 + 3, 2 + 3, 3).
  const auto r = d({1, 2, 3}, {1, 3});
  const auto v = d({0.5, -1, 2}, {1, 3});
  const GaeOut out = gae(r, v, torch::ones({1, 3}, torch::kDouble), 1.0, 1.0);
  EXPECT_TRUE(torch::allclose(out.returns, d({6, 5, 3}, {1, 3}), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(out.advantages, d({5.5, 6, 1}, {1, 3}), 0, 1e-12));
  // λ = 0: one-step TD errors δ_t = r_t + V_{t+1} − V_t = (1 − 1 − 0.5, 2 + 2 + 1, 3 − 2).
  const GaeOut td = gae(r, v, torch::ones({1, 3}, torch::kDouble), 1.0, 0.0);
  EXPECT_TRUE(torch::allclose(td.advantages, d({-0.5, 5, 1}, {1, 3}), 0, 1e-12));
}

TEST(PolicyLoss, ClipsAboveAndBelowForBothSignsOfAdvantage) {
  // ε = 0.2, range [0.8, 1.2].
  //   ratio 1.5, A = +1: max(−1.5, −1.2) = −1.2   clipped (no gradient)
  //   ratio 0.5, A = +1: max(−0.5, −0.8) = −0.5   unclipped (gradient −A·ratio = −0.5)
  //   ratio 1.5, A = −1: max(1.5, 1.2) = 1.5      unclipped (gradient 1.5)
  //   ratio 0.5, A = −1: max(0.5, 0.8) = 0.8      clipped
  //   ratio 1.1, A = +2: −2.2, inside the range
  //   sixth token is padding.
  const auto old_logp = d({-1, -2, -0.5, -1.5, -3, -1}, {1, 6});
  const auto ratios = d({1.5, 0.5, 1.5, 0.5, 1.1, 7.0}, {1, 6});
  auto logp = (old_logp + ratios.log()).detach().requires_grad_(true);
  const auto adv = d({1, 1, -1, -1, 2, 5}, {1, 6});
  const auto mask = d({1, 1, 1, 1, 1, 0}, {1, 6});
  const PolicyLossOut out = policy_loss(logp, old_logp, adv, mask, 0.2);
  EXPECT_TRUE(torch::allclose(out.per_token, d({-1.2, -0.5, 1.5, 0.8, -2.2, 0}, {1, 6}), 0, 1e-12)) << out.per_token;
  EXPECT_TRUE(torch::allclose(out.ratio, ratios, 0, 1e-12));
  EXPECT_FALSE(out.ratio.requires_grad());
  EXPECT_DOUBLE_EQ(out.clip_fraction, 2.0 / 5.0);
  // ½ mean of (ln 1.5)², (ln 0.5)², (ln 1.5)², (ln 0.5)², (ln 1.1)² = 0.129879 (checked in Python torch).
  EXPECT_NEAR(out.approx_kl, 0.12987939659970663, 1e-12);
  out.per_token.sum().backward();
  // d/dlogp of −A·ratio is −A·ratio; clipped tokens and padding get none.
  EXPECT_TRUE(torch::allclose(logp.grad(), d({0, -0.5, 1.5, 0, -2.2, 0}, {1, 6}), 0, 1e-12)) << logp.grad();
}

TEST(PolicyLoss, DualClipBoundsTheLossForNegativeAdvantages) {
  // ε = 0.2, c = 3:
  //   ratio 5,   A = −1: standard max(5, 1.2) = 5, dual min(5, 3) = 3 (no gradient)
  //   ratio 1.5, A = −1: 1.5 < 3, unchanged
  //   ratio 5,   A = +1: standard −1.2, dual clip applies to A < 0 only
  const auto old_logp = d({-2, -2, -2}, {1, 3});
  const auto ratios = d({5, 1.5, 5}, {1, 3});
  auto logp = (old_logp + ratios.log()).detach().requires_grad_(true);
  const auto adv = d({-1, -1, 1}, {1, 3});
  const auto mask = torch::ones({1, 3}, torch::kDouble);
  const auto plain = policy_loss(logp, old_logp, adv, mask, 0.2, 0.0);
  EXPECT_TRUE(torch::allclose(plain.per_token, d({5, 1.5, -1.2}, {1, 3}), 0, 1e-12));
  const auto dual = policy_loss(logp, old_logp, adv, mask, 0.2, 3.0);
  EXPECT_TRUE(torch::allclose(dual.per_token, d({3, 1.5, -1.2}, {1, 3}), 0, 1e-12)) << dual.per_token;
  dual.per_token.sum().backward();
  EXPECT_TRUE(torch::allclose(logp.grad(), d({0, 1.5, 0}, {1, 3}), 0, 1e-12)) << logp.grad();
}

TEST(PolicyLoss, RejectsBadClipSettings) {
  const auto x = torch::zeros({1, 2}, torch::kDouble);
  const auto m = torch::ones({1, 2}, torch::kDouble);
  EXPECT_THROW(policy_loss(x, x, x, m, 0.0), ConfigError);
  EXPECT_THROW(policy_loss(x, x, x, m, 0.2, 1.0), ConfigError);
  EXPECT_THROW(policy_loss(x, x, x, m, 0.2, 0.5), ConfigError);
  EXPECT_THROW(policy_loss(x, x, x, m, 0.2, -2.0), ConfigError);
  EXPECT_NO_THROW(policy_loss(x, x, x, m, 0.2, 1.5));
}

TEST(ValueLoss, ClippedAndUnclipped) {
  // c = 0.2:
  //   v 1.0, old 0.5, R 1.0: (v − R)² = 0, clipped v = 0.7: 0.09 -> ½·0.09 = 0.045 (clipped chosen)
  //   v 0.6, old 0.5, R 1.0: inside the range, 0.16 both -> 0.08
  //   v 0.0, old 0.5, R 1.0: 1.0 vs clipped 0.3: 0.49 -> 0.5 (unclipped chosen)
  //   v 2.0, old 0.5, R 0.0: 4.0 vs clipped 0.7: 0.49 -> 2.0
  //   fifth token is padding
  auto v = d({1.0, 0.6, 0.0, 2.0, 3.0}, {1, 5}).requires_grad_(true);
  const auto old = d({0.5, 0.5, 0.5, 0.5, 0.0}, {1, 5});
  const auto ret = d({1.0, 1.0, 1.0, 0.0, 0.0}, {1, 5});
  const auto mask = d({1, 1, 1, 1, 0}, {1, 5});
  const ValueLossOut clipped = value_loss(v, old, ret, mask, 0.2);
  EXPECT_TRUE(torch::allclose(clipped.per_token, d({0.045, 0.08, 0.5, 2.0, 0}, {1, 5}), 0, 1e-12)) << clipped.per_token;
  EXPECT_DOUBLE_EQ(clipped.clip_fraction, 0.25);
  clipped.per_token.sum().backward();
  // Gradients: token 0 sits at the clip boundary (no gradient through clamp), the rest v − R.
  EXPECT_TRUE(torch::allclose(v.grad(), d({0, -0.4, -1.0, 2.0, 0}, {1, 5}), 0, 1e-12)) << v.grad();

  const ValueLossOut plain = value_loss(v, old, ret, mask, 0.0);
  EXPECT_TRUE(torch::allclose(plain.per_token, d({0, 0.08, 0.5, 2.0, 0}, {1, 5}), 0, 1e-12));
  EXPECT_EQ(plain.clip_fraction, 0.0);
  EXPECT_THROW(value_loss(v, old, ret, mask, -0.1), ConfigError);
}

TEST(Logits, EntropyOfUniformIsLogV) {
  const auto uniform = torch::full({2, 3, 5}, 3.7, torch::kDouble);
  EXPECT_TRUE(torch::allclose(entropy_from_logits(uniform), torch::full({2, 3}, std::log(5.0), torch::kDouble)));
  // Huge logits are fine (log_softmax subtracts the max); −inf logits contribute 0, not NaN.
  const auto big = torch::tensor({1000.0f, 1000.0f}).reshape({1, 1, 2});
  EXPECT_NEAR(entropy_from_logits(big).item<float>(), std::log(2.0f), 1e-6);
  const double inf = std::numeric_limits<double>::infinity();
  const auto masked = d({0, 0, -inf, -inf}, {1, 1, 4});
  EXPECT_NEAR(entropy_from_logits(masked).item<double>(), std::log(2.0), 1e-12);
  // softmax(1, 2, 3) has entropy 0.832396 (Python torch).
  EXPECT_NEAR(entropy_from_logits(d({1, 2, 3}, {1, 1, 3})).item<double>(), 0.8323955818399388, 1e-12);
}

TEST(Logits, LogprobsGatherTheSampledToken) {
  // Position 0: logits (1, 2, 3), token 2: 3 − logsumexp(1, 2, 3) = −0.407606. Position 1: uniform, −ln 3.
  const auto logits = d({1, 2, 3, 0, 0, 0}, {1, 2, 3});
  const auto tokens = torch::tensor({2, 1}, torch::kLong).reshape({1, 2});
  const auto lp = logprobs_from_logits(logits, tokens);
  EXPECT_NEAR(val(lp, 0, 0), -0.4076059644443806, 1e-12);
  EXPECT_NEAR(val(lp, 0, 1), -std::log(3.0), 1e-12);
  const auto reference = torch::log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  EXPECT_TRUE(torch::allclose(lp, reference, 0, 1e-12));
  EXPECT_THROW(logprobs_from_logits(logits, torch::zeros({1, 3}, torch::kLong)), DataError);
}

TEST(ExplainedVariance, PerfectConstantAndPartial) {
  // Real returns (1, 2, 3, 4), Var = 1.25; the padding holds garbage.
  const auto ret = d({1, 2, 3, 4, 100}, {1, 5});
  const auto mask = d({1, 1, 1, 1, 0}, {1, 5});
  EXPECT_NEAR(explained_variance(ret, ret, mask), 1.0, 1e-12);
  EXPECT_NEAR(explained_variance(torch::full({1, 5}, 2.5, torch::kDouble), ret, mask), 0.0, 1e-12);
  // V = (1, 2, 3, 5): residuals (0, 0, 0, −1), variance 0.25 − 0.0625 = 0.1875; 1 − 0.1875/1.25 = 0.85.
  EXPECT_NEAR(explained_variance(d({1, 2, 3, 5, -7}, {1, 5}), ret, mask), 0.85, 1e-12);
  EXPECT_TRUE(std::isnan(explained_variance(ret, torch::ones({1, 5}, torch::kDouble), mask)));
}

}  // namespace
}  // namespace troupe::rlhf

namespace troupe::rlhf {
namespace {

TEST(AdjustScores, PenalisesMissingEosThenClips) {
  const auto scores = torch::tensor({2.0f, -3.0f, 0.5f});
  const auto eos = torch::tensor({1.0f, 0.0f, 0.0f});
  const auto out = adjust_scores(scores, eos, -1.0, 2.5);  // (2, -4, -0.5) -> clip (2, -2.5, -0.5)
  EXPECT_FLOAT_EQ(out[0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(out[1].item<float>(), -2.5f);
  EXPECT_FLOAT_EQ(out[2].item<float>(), -0.5f);
  const auto plain = adjust_scores(scores, eos, 0.0, 0.0);  // both off: unchanged
  EXPECT_TRUE(torch::equal(plain, scores));
  EXPECT_THROW(adjust_scores(scores, eos, 0.0, -1.0), ConfigError);
}

}  // namespace
}  // namespace troupe::rlhf
