// The InstructGPT ranking loss (rlhf::ranking_loss): hand-computed cases (ties, padding, all-tied prompts, K = 2
// is Bradley-Terry) and a random batch of mixed K against a pair-by-pair Python torch reference computed in the test
// (tests/rlhf/ranking_loss_reference.py), loss and gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "rlhf/preference_losses.h"
#include "tests/support/test_support.h"

namespace troupe::rlhf::ranking_tests {
namespace {

double log_sigmoid(double x) { return -std::log1p(std::exp(-x)); }
torch::Tensor f64(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::tensor(r, torch::kDouble));
  return torch::stack(out);
}
torch::Tensor i64(std::vector<std::vector<int64_t>> rows) {
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::tensor(r, torch::kLong));
  return torch::stack(out);
}

TEST(RankingLoss, WorkedExampleWithATie) {
  // rewards (1, 0, 2), ranks (1, 2, 2): pairs (0,1) and (0,2); 1 and 2 are tied and make no pair.
  const auto out = ranking_loss(f64({{1, 0, 2}}), i64({{1, 2, 2}}));
  const double expected = -0.5 * (log_sigmoid(1.0) + log_sigmoid(-1.0));
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.8132616875182228, 1e-12);
  EXPECT_EQ(out.pairs.item<int64_t>(), 2);
  EXPECT_EQ(out.correct.item<int64_t>(), 1);  // r0 > r1 right, r0 < r2 wrong
}

TEST(RankingLoss, NoTiesIsTheMeanOverAllKChoose2Pairs) {
  // ranks (2, 1, 3): response 1 best, then 0, then 2; rewards (0.5, -1, 3).
  const auto out = ranking_loss(f64({{0.5, -1.0, 3.0}}), i64({{2, 1, 3}}));
  const double expected = -(log_sigmoid(-1.0 - 0.5) + log_sigmoid(-1.0 - 3.0) + log_sigmoid(0.5 - 3.0)) / 3.0;
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-12);
  EXPECT_EQ(out.pairs.item<int64_t>(), 3);
  EXPECT_EQ(out.correct.item<int64_t>(), 0);
}

TEST(RankingLoss, TwoResponsesIsBradleyTerryAndRankNumbersOnlyOrder) {
  const auto rewards = f64({{0.3, -0.2}, {2.0, 1.0}});
  const auto out = ranking_loss(rewards, i64({{1, 2}, {7, 3}}));  // prompt 1: response 1 (rank 3) beats rank 7
  const auto bt0 = bradley_terry_loss(rewards[0][0].unsqueeze(0), rewards[0][1].unsqueeze(0));
  const auto bt1 = bradley_terry_loss(rewards[1][1].unsqueeze(0), rewards[1][0].unsqueeze(0));
  EXPECT_NEAR(out.per_prompt[0].item<double>(), bt0.item<double>(), 1e-15);
  EXPECT_NEAR(out.per_prompt[1].item<double>(), bt1.item<double>(), 1e-15);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * (bt0 + bt1).item<double>(), 1e-15);
}

TEST(RankingLoss, PaddingIsIgnoredAndGetsNoGradient) {
  // Prompt 0 has K = 2 (slot 2 is padding holding NaN), prompt 1 has K = 3.
  auto rewards = f64({{1.0, 0.0, std::numeric_limits<double>::quiet_NaN()}, {0.0, 1.0, 2.0}}).requires_grad_(true);
  const auto mask = torch::tensor({1, 1, 0, 1, 1, 1}, torch::kBool).view({2, 3});
  const auto out = ranking_loss(rewards, i64({{2, 1, 1}, {1, 2, 3}}), mask);
  const double p0 = -log_sigmoid(0.0 - 1.0);  // response 1 beats response 0; the padding's rank 1 is ignored
  const double p1 = -(log_sigmoid(-1.0) + log_sigmoid(-2.0) + log_sigmoid(-1.0)) / 3.0;
  EXPECT_NEAR(out.per_prompt[0].item<double>(), p0, 1e-12);
  EXPECT_NEAR(out.per_prompt[1].item<double>(), p1, 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * (p0 + p1), 1e-12);
  EXPECT_EQ(out.pairs[0].item<int64_t>(), 1);
  out.loss.backward();
  EXPECT_EQ(rewards.grad()[0][2].item<double>(), 0.0);
  EXPECT_FALSE(torch::isnan(rewards.grad()).any().item<bool>());
  // d loss / d r_w = ½ · −σ(−(r_w − r_l)) with w = response 1, l = response 0: −½ σ(1); and the opposite for r_l.
  EXPECT_NEAR(rewards.grad()[0][1].item<double>(), -0.5 / (1.0 + std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(rewards.grad()[0][0].item<double>(), 0.5 / (1.0 + std::exp(-1.0)), 1e-12);
}

TEST(RankingLoss, AllTiedPromptContributesNothing) {
  const auto alone = ranking_loss(f64({{0.5, 2.0}}), i64({{1, 2}}));
  auto rewards = f64({{3.0, -3.0, 1.0}, {0.5, 2.0, 0.0}}).requires_grad_(true);
  const auto mask = torch::tensor({1, 1, 1, 1, 1, 0}, torch::kBool).view({2, 3});
  const auto out = ranking_loss(rewards, i64({{2, 2, 2}, {1, 2, 0}}), mask);
  EXPECT_EQ(out.pairs[0].item<int64_t>(), 0);
  EXPECT_EQ(out.per_prompt[0].item<double>(), 0.0);
  EXPECT_NEAR(out.loss.item<double>(), alone.loss.item<double>(), 1e-15) << "the mean is over prompts with pairs";
  out.loss.backward();
  EXPECT_TRUE(torch::equal(rewards.grad()[0], torch::zeros({3}, torch::kDouble)));
  // Only tied prompts: loss 0, a zero gradient, no NaN.
  auto tied = f64({{1.0, 2.0}}).requires_grad_(true);
  const auto none = ranking_loss(tied, i64({{4, 4}}));
  EXPECT_EQ(none.loss.item<double>(), 0.0);
  none.loss.backward();
  EXPECT_TRUE(torch::equal(tied.grad(), torch::zeros({1, 2}, torch::kDouble)));
}

TEST(RankingLoss, StableForLargeGaps) {
  const auto out = ranking_loss(torch::tensor({-200.0f, 200.0f}).view({1, 2}), i64({{1, 2}}));
  EXPECT_NEAR(out.loss.item<float>(), 400.0f, 1e-3);
}

TEST(RankingLoss, MatchesAPairByPairPythonTorchReferenceWithGradients) {
  torch::manual_seed(7);
  const int64_t B = 6, K = 5;
  const std::vector<int64_t> sizes = {2, 5, 3, 4, 5, 3};  // prompt 5 ranks all its responses equal
  auto rewards = (torch::randn({B, K}, torch::kDouble) * 2.0).requires_grad_(true);
  auto ranks = torch::randint(1, 4, {B, K}, torch::kLong);  // 1..3: ties are common
  ranks[5].fill_(2);
  auto mask = torch::zeros({B, K}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) mask[b].slice(0, 0, sizes[static_cast<size_t>(b)]).fill_(true);
  const auto out = ranking_loss(rewards, ranks, mask);
  out.loss.backward();

  testing::ScratchDir dir;
  auto rows = [](const torch::Tensor& t) {
    nlohmann::json j = nlohmann::json::array();
    const auto c = t.to(torch::kDouble).contiguous();
    for (int64_t b = 0; b < c.size(0); ++b) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t k = 0; k < c.size(1); ++k) row.push_back(c[b][k].item<double>());
      j.push_back(row);
    }
    return j;
  };
  const nlohmann::json in = {{"rewards", rows(rewards.detach())}, {"ranks", rows(ranks)}, {"mask", rows(mask)}};
  testing::write_file(dir / "in.json", in.dump());
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/rlhf/ranking_loss_reference.py").string(),
                            (dir / "in.json").string(), (dir / "out.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(testing::read_file(dir / "out.json"));
  EXPECT_NEAR(out.loss.item<double>(), ref["loss"].get<double>(), 1e-12);
  EXPECT_GT(ref["loss"].get<double>(), 0.1);  // not trivially zero
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_NEAR(out.per_prompt[b].item<double>(), ref["per_prompt"][static_cast<size_t>(b)].get<double>(), 1e-12) << b;
    EXPECT_EQ(out.pairs[b].item<int64_t>(), ref["pairs"][static_cast<size_t>(b)].get<int64_t>()) << b;
    for (int64_t k = 0; k < K; ++k) {
      EXPECT_NEAR(rewards.grad()[b][k].item<double>(),
                  ref["grad"][static_cast<size_t>(b)][static_cast<size_t>(k)].get<double>(), 1e-12)
          << b << "," << k;
    }
  }
  EXPECT_EQ(out.pairs[5].item<int64_t>(), 0);  // the all-tied prompt
  EXPECT_GT(out.pairs.sum().item<int64_t>(), 10);
}

}  // namespace
}  // namespace troupe::rlhf::ranking_tests
