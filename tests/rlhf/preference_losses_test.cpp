// Hand-computed values for the Bradley-Terry and DPO/IPO/cDPO losses.
#include "rlhf/preference_losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/config_binder.h"
#include "core/errors.h"

namespace troupe::rlhf {
namespace {

double log_sigmoid(double x) { return -std::log1p(std::exp(-x)); }

TEST(BradleyTerry, MatchesClosedFormWithAndWithoutMargin) {
  const auto rc = torch::tensor({2.0, 0.0, -1.0}, torch::kDouble);
  const auto rr = torch::tensor({1.0, 0.0, 1.0}, torch::kDouble);
  const auto loss = bradley_terry_loss(rc, rr);
  EXPECT_NEAR(loss[0].item<double>(), -log_sigmoid(1.0), 1e-12);   // 0.31326
  EXPECT_NEAR(loss[1].item<double>(), std::log(2.0), 1e-12);       // equal rewards: log 2
  EXPECT_NEAR(loss[2].item<double>(), -log_sigmoid(-2.0), 1e-12);  // 2.12693
  const auto with_margin = bradley_terry_loss(rc, rr, torch::tensor({0.5, 0.0, 0.0}, torch::kDouble));
  EXPECT_NEAR(with_margin[0].item<double>(), -log_sigmoid(0.5), 1e-12);
}

TEST(BradleyTerry, StableForLargeGaps) {
  const auto loss = bradley_terry_loss(torch::tensor({-200.0f}), torch::tensor({200.0f}));
  EXPECT_NEAR(loss.item<float>(), 400.0f, 1e-3);  // log(sigmoid(-400)) would be -inf in float
  EXPECT_EQ(bradley_terry_loss(torch::tensor({200.0f}), torch::tensor({-200.0f})).item<float>(), 0.0f);
}

TEST(BradleyTerry, GradientIsSigmoidOfNegativeGap) {
  auto rc = torch::tensor({0.3}, torch::TensorOptions().dtype(torch::kDouble).requires_grad(true));
  auto rr = torch::tensor({-0.2}, torch::kDouble);
  bradley_terry_loss(rc, rr).sum().backward();
  EXPECT_NEAR(rc.grad().item<double>(), -1.0 / (1.0 + std::exp(0.5)), 1e-12);  // −σ(−0.5)
}

struct Pair {
  torch::Tensor pc = torch::tensor({-3.0}, torch::kDouble), pr = torch::tensor({-5.0}, torch::kDouble);
  torch::Tensor rc = torch::tensor({-4.0}, torch::kDouble), rr = torch::tensor({-4.0}, torch::kDouble);
};

TEST(Dpo, SigmoidLossOnTheWorkedExample) {
  Pair p;  // h = 2
  DpoOptions o;
  o.beta = 0.5;
  const auto out = dpo_loss(p.pc, p.pr, p.rc, p.rr, o);
  EXPECT_NEAR(out.loss.item<double>(), -log_sigmoid(1.0), 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.31326168751822286, 1e-12);
  EXPECT_NEAR(out.chosen_rewards.item<double>(), 0.5, 1e-12);     // 0.5 * (−3 − −4)
  EXPECT_NEAR(out.rejected_rewards.item<double>(), -0.5, 1e-12);  // 0.5 * (−5 − −4)
}

TEST(Dpo, IpoIsSquaredDistanceToHalfInverseBeta) {
  Pair p;  // h = 2
  DpoOptions o;
  o.beta = 0.1;
  o.loss = DpoLoss::kIpo;
  EXPECT_NEAR(dpo_loss(p.pc, p.pr, p.rc, p.rr, o).loss.item<double>(), (2.0 - 5.0) * (2.0 - 5.0), 1e-12);
  o.beta = 0.25;  // 1/(2β) = 2 = h: the IPO optimum
  EXPECT_NEAR(dpo_loss(p.pc, p.pr, p.rc, p.rr, o).loss.item<double>(), 0.0, 1e-12);
}

TEST(Dpo, ConservativeMixesBothDirections) {
  Pair p;
  DpoOptions o;
  o.beta = 0.5;
  o.loss = DpoLoss::kConservative;
  o.label_smoothing = 0.2;
  const double expected = -0.8 * log_sigmoid(1.0) - 0.2 * log_sigmoid(-1.0);
  EXPECT_NEAR(dpo_loss(p.pc, p.pr, p.rc, p.rr, o).loss.item<double>(), expected, 1e-12);
  o.label_smoothing = 0.0;  // cDPO with ε = 0 is DPO
  DpoOptions plain;
  plain.beta = 0.5;
  EXPECT_NEAR(dpo_loss(p.pc, p.pr, p.rc, p.rr, o).loss.item<double>(),
              dpo_loss(p.pc, p.pr, p.rc, p.rr, plain).loss.item<double>(), 1e-15);
}

TEST(Dpo, GradientPushesChosenUpAndRejectedDown) {
  auto opts = torch::TensorOptions().dtype(torch::kDouble).requires_grad(true);
  auto pc = torch::tensor({-3.0}, opts), pr = torch::tensor({-5.0}, opts);
  DpoOptions o;
  o.beta = 0.5;
  dpo_loss(pc, pr, torch::tensor({-4.0}, torch::kDouble), torch::tensor({-4.0}, torch::kDouble), o)
      .loss.sum()
      .backward();
  const double g = -0.5 / (1.0 + std::exp(1.0));  // d/dpc of softplus(−β h) = −β σ(−β h)
  EXPECT_NEAR(pc.grad().item<double>(), g, 1e-12);
  EXPECT_NEAR(pr.grad().item<double>(), -g, 1e-12);
}

TEST(Dpo, LossConfigNames) {
  EXPECT_EQ(core::parse_enum<DpoLoss>("dpo"), DpoLoss::kSigmoid);
  EXPECT_EQ(core::parse_enum<DpoLoss>("ipo"), DpoLoss::kIpo);
  EXPECT_EQ(core::parse_enum<DpoLoss>("cdpo"), DpoLoss::kConservative);
  EXPECT_FALSE(core::parse_enum<DpoLoss>("kto"));
}

}  // namespace
}  // namespace troupe::rlhf
