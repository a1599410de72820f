// Implementation of rlhf/ppo_math.h.
#include "rlhf/ppo_math.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "core/errors.h"

namespace troupe::rlhf {

namespace {

std::string fmt(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

void check_same_shape(const char* fn, const char* name, const at::Tensor& x, const at::Tensor& mask) {
  if (!x.defined() || !mask.defined()) throw DataError(std::string(fn) + ": " + name + " or mask is undefined");
  if (x.sizes() != mask.sizes())
    throw DataError(std::string(fn) + ": " + name + " has shape " + c10::str(x.sizes()) + ", mask has " +
                    c10::str(mask.sizes()));
}

// Every row must be 1…1 0…0: a response followed by padding. A hole would make "the last real token" ambiguous.
void check_prefix_mask(const char* fn, const at::Tensor& mask) {
  if (mask.dim() != 2) throw DataError(std::string(fn) + ": mask must be [B, T], got " + c10::str(mask.sizes()));
  const int64_t T = mask.size(1);
  if (T < 2) return;
  const bool rises = (mask.slice(1, 1, T) > mask.slice(1, 0, T - 1)).any().item<bool>();  // sync point
  if (rises) throw DataError(std::string(fn) + ": mask rows must be ones followed by zeros (response then padding)");
}

}  // namespace

// ---- masked statistics ----

at::Tensor masked_sum(const at::Tensor& x, const at::Tensor& mask) {
  check_same_shape("masked_sum", "x", x, mask);
  return (x * mask).sum();
}

at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask) {
  check_same_shape("masked_mean", "x", x, mask);
  const at::Tensor count = mask.sum();
  if (count.item<double>() <= 0.0) throw DataError("masked_mean: the mask has no real tokens");  // sync point
  return (x * mask).sum() / count;
}

double MaskedMoments::mean() const {
  if (count < 1.0) throw DataError("MaskedMoments: mean of no values");
  return sum / count;
}

double MaskedMoments::variance(bool unbiased) const {
  if (count < (unbiased ? 2.0 : 1.0))
    throw DataError("MaskedMoments: variance needs at least " + std::string(unbiased ? "2" : "1") + " values, got " +
                    fmt(count));
  const double m = sum / count;
  const double population = std::max(0.0, sum_sq / count - m * m);  // E[x²] − E[x]² can dip below 0 by rounding
  return unbiased ? population * count / (count - 1.0) : population;
}

MaskedMoments& MaskedMoments::operator+=(const MaskedMoments& other) {
  sum += other.sum;
  sum_sq += other.sum_sq;
  count += other.count;
  return *this;
}

MaskedMoments masked_moments(const at::Tensor& x, const at::Tensor& mask) {
  check_same_shape("masked_moments", "x", x, mask);
  torch::NoGradGuard no_grad;
  const at::Tensor xd = x.to(torch::kDouble);
  const at::Tensor md = mask.to(torch::kDouble);
  // One transfer for the three sums (a single sync point on an accelerator).
  const at::Tensor sums = torch::stack({(xd * md).sum(), (xd * xd * md).sum(), md.sum()}).cpu();
  const double* p = sums.data_ptr<double>();
  return MaskedMoments{p[0], p[1], p[2]};
}

at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, double mean, double var, bool shift_mean) {
  check_same_shape("whiten", "x", x, mask);
  at::Tensor out = (x - mean) * (1.0 / std::sqrt(var + 1e-8));
  if (!shift_mean) out = out + mean;
  return out * mask;
}

at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean) {
  const MaskedMoments m = masked_moments(x, mask);
  return whiten(x, mask, m.mean(), m.variance(/*unbiased=*/true), shift_mean);
}

// ---- KL estimators ----

at::Tensor kl_estimate(const at::Tensor& logp, const at::Tensor& ref_logp, KlEstimator estimator) {
  check_same_shape("kl_estimate", "logp", logp, ref_logp);
  const at::Tensor lr = logp - ref_logp;
  switch (estimator) {
    case KlEstimator::kK1: return lr;
    case KlEstimator::kK2: return 0.5 * lr * lr;
    case KlEstimator::kK3: {
      const at::Tensor d = torch::clamp(-lr, -20.0, 20.0);
      return torch::clamp(torch::expm1(d) - d, -10.0, 10.0);  // expm1 keeps precision where lr ≈ 0 (terms cancel)
    }
  }
  throw ConfigError("kl_estimate: unknown estimator");
}

// ---- rewards and advantages ----

at::Tensor last_token_index(const at::Tensor& mask) {
  check_prefix_mask("last_token_index", mask);
  const at::Tensor counts = mask.sum(1).round().to(torch::kLong);  // [B]
  const at::Tensor empty = (counts < 1).nonzero();
  if (empty.size(0) > 0)
    throw DataError("last_token_index: row " + std::to_string(empty[0][0].item<int64_t>()) +
                    " has no real response token");
  return counts - 1;
}

at::Tensor adjust_scores(const at::Tensor& scores, const at::Tensor& eos, double missing_eos_penalty, double clip) {
  if (clip < 0) throw ConfigError("reward.clip must be >= 0 (0 = off), got " + std::to_string(clip));
  torch::Tensor out = scores.to(torch::kFloat32) + missing_eos_penalty * (1 - eos.to(torch::kFloat32));
  if (clip > 0) out = out.clamp(-clip, clip);
  return out;
}

at::Tensor shape_rewards(const at::Tensor& scores, const at::Tensor& kl, const at::Tensor& mask, double kl_coef) {
  check_same_shape("shape_rewards", "kl", kl, mask);
  if (scores.dim() != 1 || scores.size(0) != mask.size(0))
    throw DataError("shape_rewards: scores must be [B] = [" + std::to_string(mask.size(0)) + "], got " +
                    c10::str(scores.sizes()));
  torch::NoGradGuard no_grad;
  const at::Tensor last = last_token_index(mask);        // [B]
  at::Tensor rewards = (-kl_coef) * kl.detach() * mask;  // [B, T]
  rewards.scatter_add_(1, last.unsqueeze(1), scores.detach().to(rewards.scalar_type()).unsqueeze(1));
  return rewards;
}

GaeOut gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma, double lambda) {
  check_same_shape("gae", "rewards", rewards, mask);
  check_same_shape("gae", "values", values, mask);
  check_prefix_mask("gae", mask);
  torch::NoGradGuard no_grad;
  const at::Tensor m = mask.to(rewards.scalar_type());
  const at::Tensor v = values.detach().to(rewards.scalar_type()) * m;  // V_t·m_t: 0 past the last real token
  const int64_t T = rewards.size(1);
  std::vector<at::Tensor> columns(static_cast<size_t>(T));
  at::Tensor next_adv = torch::zeros({rewards.size(0)}, rewards.options());  // A_{t+1}
  at::Tensor next_value = torch::zeros_like(next_adv);                       // V_{t+1}·m_{t+1}
  at::Tensor next_mask = torch::zeros_like(next_adv);                        // m_{t+1}
  for (int64_t t = T - 1; t >= 0; --t) {
    const at::Tensor delta = rewards.select(1, t) + gamma * next_value - v.select(1, t);
    next_adv = delta + (gamma * lambda) * next_mask * next_adv;
    columns[static_cast<size_t>(t)] = next_adv;
    next_value = v.select(1, t);
    next_mask = m.select(1, t);
  }
  GaeOut out;
  out.advantages = torch::stack(columns, 1) * m;
  out.returns = (out.advantages + v) * m;
  return out;
}

// ---- losses ----

PolicyLossOut policy_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                          const at::Tensor& mask, double clip_eps, double dual_clip, double clip_eps_high,
                          ImportanceRatio ratio_kind) {
  if (!(clip_eps > 0.0)) throw ConfigError("policy_loss: clip_eps = " + fmt(clip_eps) + ": expected a number > 0");
  if (!(clip_eps_high >= 0.0))
    throw ConfigError("policy_loss: clip_eps_high = " + fmt(clip_eps_high) + ": expected 0 (= clip_eps) or > 0");
  if (dual_clip != 0.0 && !(dual_clip > 1.0))
    throw ConfigError("policy_loss: dual_clip = " + fmt(dual_clip) + ": expected 0 (off) or a number > 1");
  if (dual_clip != 0.0 && ratio_kind == ImportanceRatio::kSequence)
    throw ConfigError("policy_loss: dual_clip works on token ratios only, not with the sequence ratio (gspo)");
  check_same_shape("policy_loss", "logp", logp, mask);
  check_same_shape("policy_loss", "old_logp", old_logp, mask);
  check_same_shape("policy_loss", "advantages", advantages, mask);
  const double eps_high = clip_eps_high > 0.0 ? clip_eps_high : clip_eps;
  const at::Tensor adv = advantages.detach();
  const at::Tensor log_ratio = logp - old_logp.detach();
  at::Tensor ratio;
  if (ratio_kind == ImportanceRatio::kToken) {
    // The log-ratio clamped to ±20 as veRL does: a policy that drifted far gives e^20, not inf (and 0·inf = NaN
    // where the advantage is 0).
    ratio = torch::exp(torch::clamp(log_ratio, -20.0, 20.0));
  } else {
    const at::Tensor m = mask.to(log_ratio.scalar_type());
    const at::Tensor seq = ((log_ratio * m).sum(1) / m.sum(1).clamp_min(1.0)).detach().unsqueeze(1);  // log s_b
    ratio = torch::exp(torch::clamp_max(logp - logp.detach() + seq, 10.0));
  }
  const at::Tensor surr = -adv * ratio;
  const at::Tensor surr_clipped = -adv * torch::clamp(ratio, 1.0 - clip_eps, 1.0 + eps_high);
  at::Tensor loss = torch::maximum(surr, surr_clipped);
  if (dual_clip > 1.0) loss = torch::where(adv < 0, torch::minimum(loss, -dual_clip * adv), loss);

  PolicyLossOut out;
  out.per_token = loss * mask;
  torch::NoGradGuard no_grad;
  out.ratio = ratio.detach();
  out.clip_fraction = masked_mean((surr_clipped > surr).to(mask.scalar_type()), mask).item<double>();
  const at::Tensor lr = log_ratio.detach();
  out.approx_kl = masked_mean(0.5 * lr * lr, mask).item<double>();
  return out;
}

at::Tensor aggregate_loss(const at::Tensor& per_token, const at::Tensor& mask, LossAggregation aggregation,
                          const LossNormalizer& norm) {
  check_same_shape("aggregate_loss", "per_token", per_token, mask);
  const at::Tensor masked = per_token * mask;
  switch (aggregation) {
    case LossAggregation::kTokenMean: return masked.sum() / norm.tokens;
    case LossAggregation::kSeqMeanTokenMean: return (masked.sum(1) / mask.sum(1).clamp_min(1.0)).sum() / norm.sequences;
    case LossAggregation::kSeqMeanTokenSumNorm: return masked.sum() / (norm.sequences * norm.max_length);
  }
  throw ConfigError("aggregate_loss: unknown aggregation");
}

ValueLossOut value_loss(const at::Tensor& values, const at::Tensor& old_values, const at::Tensor& returns,
                        const at::Tensor& mask, double clip_range) {
  if (!(clip_range >= 0.0))
    throw ConfigError("value_loss: clip_range = " + fmt(clip_range) + ": expected 0 (off) or a number > 0");
  check_same_shape("value_loss", "values", values, mask);
  check_same_shape("value_loss", "old_values", old_values, mask);
  check_same_shape("value_loss", "returns", returns, mask);
  const at::Tensor target = returns.detach();
  const at::Tensor err = (values - target).pow(2);
  ValueLossOut out;
  if (clip_range == 0.0) {
    out.per_token = 0.5 * err * mask;
    return out;
  }
  const at::Tensor old = old_values.detach();
  const at::Tensor clipped = old + torch::clamp(values - old, -clip_range, clip_range);
  const at::Tensor err_clipped = (clipped - target).pow(2);
  out.per_token = 0.5 * torch::maximum(err, err_clipped) * mask;
  torch::NoGradGuard no_grad;
  out.clip_fraction = masked_mean((err_clipped > err).to(mask.scalar_type()), mask).item<double>();
  return out;
}

// ---- logits ----

at::Tensor entropy_from_logits(const at::Tensor& logits) {
  if (logits.dim() != 3)
    throw DataError("entropy_from_logits: logits must be [B, T, V], got " + c10::str(logits.sizes()));
  const at::Tensor logp = torch::log_softmax(logits, -1);
  // p·log p with p = 0 (a −inf logit) is 0·(−inf) = NaN in IEEE arithmetic; its limit is 0.
  const at::Tensor plogp = (torch::exp(logp) * logp).masked_fill(torch::isneginf(logp), 0.0);
  return -plogp.sum(-1);
}

at::Tensor logprobs_from_logits(const at::Tensor& logits, const at::Tensor& tokens) {
  if (logits.dim() != 3 || tokens.dim() != 2 || logits.size(0) != tokens.size(0) || logits.size(1) != tokens.size(1))
    throw DataError("logprobs_from_logits: logits must be [B, T, V] and tokens [B, T], got " +
                    c10::str(logits.sizes()) + " and " + c10::str(tokens.sizes()));
  const at::Tensor picked = logits.gather(-1, tokens.to(torch::kLong).unsqueeze(-1)).squeeze(-1);  // [B, T]
  return picked - torch::logsumexp(logits, -1);
}

double explained_variance(const at::Tensor& values, const at::Tensor& returns, const at::Tensor& mask) {
  check_same_shape("explained_variance", "values", values, mask);
  check_same_shape("explained_variance", "returns", returns, mask);
  torch::NoGradGuard no_grad;
  const double var_returns = masked_moments(returns, mask).variance(/*unbiased=*/false);
  const double var_residual = masked_moments(returns - values.detach(), mask).variance(/*unbiased=*/false);
  if (var_returns == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return 1.0 - var_residual / var_returns;
}

ActorLossOut actor_loss(const at::Tensor& logp, const at::Tensor& entropy, const at::Tensor& old_logp,
                        const at::Tensor& ref_logp, const at::Tensor& advantages, const at::Tensor& mask,
                        const LossNormalizer& norm, const ActorLossOptions& o) {
  ActorLossOut out;
  out.policy = policy_loss(logp, old_logp, advantages, mask, o.clip_eps, o.dual_clip, o.clip_eps_high, o.ratio);
  at::Tensor loss = aggregate_loss(out.policy.per_token, mask, o.aggregation, norm);
  out.policy_term = loss.item<double>();
  if (entropy.defined()) {
    const at::Tensor h = aggregate_loss(entropy, mask, o.aggregation, norm);
    out.entropy_term = h.item<double>();
    if (o.entropy_coef > 0) loss = loss - o.entropy_coef * h;
  }
  if (o.kl_loss) {
    const at::Tensor kl = aggregate_loss(kl_estimate(logp, ref_logp, o.kl), mask, o.aggregation, norm);
    out.kl_term = kl.item<double>();
    loss = loss + o.kl_coef * kl;
  }
  out.loss = loss;
  return out;
}

}  // namespace troupe::rlhf
