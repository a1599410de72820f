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
