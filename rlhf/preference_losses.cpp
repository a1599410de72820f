// Implementation of rlhf/preference_losses.h.
#include "rlhf/preference_losses.h"

#include <torch/torch.h>

#include "core/errors.h"

namespace troupe::rlhf {

namespace F = torch::nn::functional;

at::Tensor bradley_terry_loss(const at::Tensor& r_chosen, const at::Tensor& r_rejected, const at::Tensor& margin) {
  torch::Tensor x = r_chosen - r_rejected;
  if (margin.defined()) x = x - margin;
  return F::softplus(-x);  // −log σ(x)
}

RankingLossOut ranking_loss(const at::Tensor& rewards, const at::Tensor& ranks, const at::Tensor& mask) {
  TORCH_CHECK(rewards.dim() == 2 && ranks.sizes() == rewards.sizes(), "ranking_loss: rewards and ranks must be (B, K)");
  const torch::Tensor real = mask.defined() ? mask.to(torch::kBool) : torch::ones_like(ranks, torch::kBool);  // (B, K)
  TORCH_CHECK(real.sizes() == rewards.sizes(), "ranking_loss: mask must be (B, K) like rewards");
  const torch::Tensor r = torch::where(real, rewards, torch::zeros_like(rewards));  // padding never reaches a pair
  // better[b][i][j]: response i is ranked above response j, both real. (B, K, K)
  const torch::Tensor better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & real.unsqueeze(2) & real.unsqueeze(1);
  const torch::Tensor gap = r.unsqueeze(2) - r.unsqueeze(1);  // (B, K, K) r_i − r_j
  const torch::Tensor pair_loss = torch::where(better, F::softplus(-gap), torch::zeros_like(gap));  // −log σ(gap)
  RankingLossOut out;
  out.pairs = better.sum({1, 2});                                                       // [B] int64
  out.correct = (better & (gap > 0)).sum({1, 2});                                       // [B] int64
  out.per_prompt = pair_loss.sum({1, 2}) / out.pairs.clamp_min(1).to(r.scalar_type());  // [B]
  const torch::Tensor prompts = (out.pairs > 0).sum().clamp_min(1).to(r.scalar_type());
  out.loss = out.per_prompt.sum() / prompts;
  return out;
}

DpoLossOut dpo_loss(const at::Tensor& policy_chosen, const at::Tensor& policy_rejected,
                    const at::Tensor& reference_chosen, const at::Tensor& reference_rejected,
                    const DpoOptions& options) {
  const torch::Tensor chosen_ratio = policy_chosen - reference_chosen;        // log π/π_ref on y_w
  const torch::Tensor rejected_ratio = policy_rejected - reference_rejected;  // log π/π_ref on y_l
  const torch::Tensor h = chosen_ratio - rejected_ratio;
  const double beta = options.beta;
  DpoLossOut out;
  switch (options.loss) {
    case DpoLoss::kSigmoid: out.loss = F::softplus(-beta * h); break;
    case DpoLoss::kIpo: out.loss = (h - 1.0 / (2.0 * beta)).pow(2); break;
    case DpoLoss::kConservative: {
      const double eps = options.label_smoothing;
      out.loss = (1.0 - eps) * F::softplus(-beta * h) + eps * F::softplus(beta * h);
      break;
    }
  }
  out.chosen_rewards = (beta * chosen_ratio).detach();
  out.rejected_rewards = (beta * rejected_ratio).detach();
  return out;
}

}  // namespace troupe::rlhf
