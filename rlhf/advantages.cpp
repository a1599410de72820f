// Implementation of rlhf/advantages.h.
#include "rlhf/advantages.h"

#include <torch/torch.h>

#include <string>

#include "core/config_binder.h"
#include "core/errors.h"
#include "rlhf/ppo_math.h"

namespace troupe::rlhf {

at::Tensor group_advantages(const at::Tensor& scores, int64_t group_size, AdvantageEstimator estimator) {
  if (!needs_groups(estimator)) {
    throw ConfigError(std::string("group_advantages: ") + core::enum_name(estimator) + " is not a group estimator");
  }
  if (group_size < 2) {
    throw ConfigError(std::string("group_advantages: ") + core::enum_name(estimator) + " needs group_size >= 2, got " +
                      std::to_string(group_size));
  }
  if (scores.dim() != 1 || scores.size(0) % group_size != 0) {
    throw DataError("group_advantages: scores must be [B] with B a multiple of group_size " +
                    std::to_string(group_size) + ", got " + c10::str(scores.sizes()));
  }
  torch::NoGradGuard no_grad;
  const at::Tensor s = scores.detach().to(torch::kDouble).reshape({-1, group_size});  // [groups, G]
  const at::Tensor mean = s.mean(1, /*keepdim=*/true);
  const at::Tensor centred = s - mean;
  at::Tensor adv;
  switch (estimator) {
    case AdvantageEstimator::kGrpo: adv = centred / (s.std(1, /*unbiased=*/true, /*keepdim=*/true) + 1e-6); break;
    case AdvantageEstimator::kRloo:
      adv = centred * (static_cast<double>(group_size) / static_cast<double>(group_size - 1));
      break;
    default: adv = centred; break;  // Dr. GRPO; REINFORCE++-baseline's baseline-subtracted score
  }
  return adv.reshape({-1});
}

at::Tensor discounted_returns(const at::Tensor& rewards, const at::Tensor& mask, double gamma) {
  // GAE with V = 0 and λ = 1 is exactly the discounted reward-to-go: δ_t = r_t, A_t = r_t + γ·m_{t+1}·A_{t+1}.
  return gae(rewards, torch::zeros_like(rewards), mask, gamma, 1.0).advantages;
}

at::Tensor overlong_shaping(const at::Tensor& lengths, int64_t max_new_tokens, int64_t buffer, double penalty) {
  const at::Tensor len = lengths.to(torch::kFloat32);
  if (buffer <= 0) return torch::zeros_like(len);
  const double expected = static_cast<double>(max_new_tokens - buffer);
  return torch::clamp_max(-(len - expected) / static_cast<double>(buffer) * penalty, 0.0);
}

AdvantageOutputs compute_advantages(AdvantageEstimator estimator, const AdvantageInputs& in) {
  torch::NoGradGuard no_grad;
  const at::Tensor& mask = in.mask;
  // Computed in the inputs' dtype (float32 from the roles), as PPO always has; group statistics in float64.
  const at::Tensor scores = in.scores.detach();
  const at::Tensor kl = in.kl.detach();
  const at::Tensor& m = mask;
  AdvantageOutputs out;
  switch (estimator) {
    case AdvantageEstimator::kGae: {
      if (!in.values.defined()) throw ProtocolError("compute_advantages: gae needs the critic's values");
      const GaeOut g = gae(shape_rewards(scores, kl, m, in.kl_coef), in.values, m, in.gamma, in.lambda);
      out.raw = g.advantages;
      out.returns = g.returns;
      out.advantages = in.whiten_gae ? whiten(g.advantages, m, /*shift_mean=*/true) : g.advantages;
      break;
    }
    case AdvantageEstimator::kGrpo:
    case AdvantageEstimator::kDrGrpo:
    case AdvantageEstimator::kRloo: {
      // The outcome score: the sum of the shaped rewards (sequence score − β Σ_t kl_t).
      const at::Tensor outcome = scores - in.kl_coef * (kl * m).sum(1);
      out.raw = group_advantages(outcome, in.group_size, estimator).to(m.scalar_type()).unsqueeze(1) * m;
      out.advantages = out.raw;
      break;
    }
    case AdvantageEstimator::kReinforcePp:
    case AdvantageEstimator::kReinforcePpBaseline: {
      const at::Tensor s = estimator == AdvantageEstimator::kReinforcePp
                               ? scores
                               : group_advantages(scores, in.group_size, estimator).to(scores.scalar_type());
      out.raw = discounted_returns(shape_rewards(s, kl, m, in.kl_coef), m, in.gamma);
      out.advantages = whiten(out.raw, m, /*shift_mean=*/true);
      break;
    }
    case AdvantageEstimator::kRemax: {
      if (!in.baseline.defined() || in.baseline.dim() != 1 || in.baseline.size(0) != scores.size(0)) {
        throw ProtocolError("compute_advantages: remax needs the greedy baseline score of every row ([B])");
      }
      const at::Tensor returns = discounted_returns(shape_rewards(scores, kl, m, in.kl_coef), m, in.gamma);
      out.raw = (returns - in.baseline.detach().to(returns.scalar_type()).unsqueeze(1)) * m;
      out.advantages = out.raw;
      break;
    }
  }
  return out;
}

}  // namespace troupe::rlhf
