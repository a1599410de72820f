// PPO math for RLHF as pure tensor functions: masked statistics and whitening, per-token KL estimators, reward
// shaping, GAE, the clipped (and dual-clipped) policy loss, the clipped value loss, and log-prob / entropy helpers.
// No models, no optimiser, no communication: callers all-reduce the moments and counts these return.
//
// Conventions. Per-token tensors are [B, T] over RESPONSE positions (column t = token t of the response) with a
// float `mask` [B, T]: 1 for a real response token, 0 for padding after the response ended. Every row's mask is a
// prefix of ones (1…1 0…0); functions that depend on that check it. Functions returning a double call .item()
// (a sync point on an accelerator).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

namespace troupe::rlhf {

// ---- masked statistics ----

// Σ x·mask, a 0-dim tensor (differentiable in x). x, mask: [B, T] (any equal shapes).
at::Tensor masked_sum(const at::Tensor& x, const at::Tensor& mask);
// Σ x·mask / Σ mask, a 0-dim tensor (differentiable in x). Throws DataError when the mask has no ones.
at::Tensor masked_mean(const at::Tensor& x, const at::Tensor& mask);

// Sums over the masked positions, in double, so that data-parallel ranks can all-reduce them (add field-wise) and
// agree on one mean and variance.
struct MaskedMoments {
  double sum = 0.0;     // Σ x·mask
  double sum_sq = 0.0;  // Σ x²·mask
  double count = 0.0;   // Σ mask

  double mean() const;
  // Variance over the counted values: population (÷ n), or with Bessel's correction (× n / (n − 1)) as TRL's
  // masked_var(unbiased=True). Computed as E[x²] − E[x]², clamped at 0. Throws DataError for count < 1
  // (count < 2 when unbiased).
  double variance(bool unbiased = true) const;
  MaskedMoments& operator+=(const MaskedMoments& other);
};

// Moments of x over mask. x, mask: [B, T].
MaskedMoments masked_moments(const at::Tensor& x, const at::Tensor& mask);

// (x − mean) / sqrt(var + 1e-8), plus `mean` added back when !shift_mean (TRL's masked_whiten); positions where
// mask = 0 are set to 0. x, mask: [B, T] -> [B, T]. Pass the all-reduced mean and variance under data parallelism.
at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, double mean, double var, bool shift_mean = true);
// As above with the moments of this x alone and the unbiased variance (Bessel-corrected, as TRL). Needs at least
// two real tokens (DataError otherwise).
at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean = true);

// ---- KL estimators ----

// Per-token estimators of KL(π‖π_ref) from samples of π, with the log-ratio lr = log π − log π_ref
// (Schulman, "Approximating KL divergence", 2020):
enum class KlEstimator {
  kK1,  // lr: unbiased, can be negative, high variance
  kK2,  // ½ lr²: biased, non-negative, low variance
  kK3,  // (e^{−lr} − 1) + lr: unbiased and non-negative ((r − 1) − log r with r = π_ref/π); as veRL's low_var_kl,
        // −lr is clamped to [−20, 20] before the exponential and the estimate to [−10, 10] (no gradient beyond), so
        // a policy far from the reference gives a bounded loss instead of inf and then NaN weights
};
constexpr auto config_names(KlEstimator) {
  return std::array{std::pair{KlEstimator::kK1, "k1"}, std::pair{KlEstimator::kK2, "k2"},
                    std::pair{KlEstimator::kK3, "k3"}};
}

// The estimator at every position. logp, ref_logp: [B, T] log-probs of the sampled tokens -> [B, T] (not masked).
// Examples at lr = 1: k1 = 1, k2 = 0.5, k3 = e^{−1} − 1 + 1 = 0.3679.
at::Tensor kl_estimate(const at::Tensor& logp, const at::Tensor& ref_logp, KlEstimator estimator);

// ---- rewards and advantages ----

// Index of the last real response token of each row, mask.sum(1) − 1. mask: [B, T] -> [B] int64. Throws
// DataError for a row with no real token or a mask that is not a prefix of ones.
at::Tensor last_token_index(const at::Tensor& mask);

// Per-token rewards: −kl_coef·kl at every real response token, plus the sequence score at the last real token of
// each row — whether the response ended with EOS or was truncated at the length limit, the score goes on the last
// generated token. scores: [B]; kl, mask: [B, T] -> [B, T], 0 at padding, no grad.
// Example: score 2, kl (0.1, 0.2, 0.3), mask (1, 1, 0), kl_coef 0.5 -> (−0.05, −0.1 + 2, 0) = (−0.05, 1.9, 0).
at::Tensor shape_rewards(const at::Tensor& scores, const at::Tensor& kl, const at::Tensor& mask, double kl_coef);

// Sequence scores as PPO uses them: `missing_eos_penalty` added where the response has no EOS (eos = 0, i.e. it
// was cut at max_new_tokens), then clipped to [−clip, clip] when clip > 0. scores, eos: [B] -> [B] float32.
// Example: scores (2, −3), eos (1, 0), penalty −1, clip 2.5 -> (2, −4) -> (2, −2.5).
at::Tensor adjust_scores(const at::Tensor& scores, const at::Tensor& eos, double missing_eos_penalty, double clip);

struct GaeOut {
  at::Tensor advantages;  // [B, T], 0 at padding
  at::Tensor returns;     // [B, T] advantages + values (the value targets), 0 at padding
};

// Generalised advantage estimation (Schulman et al. 2016), backwards over t:
//   δ_t = r_t + γ·V_{t+1}·m_{t+1} − V_t,   A_t = δ_t + γλ·m_{t+1}·A_{t+1},
// with V and A after the last real token taken as 0: the episode ends at the last response token. A response
// truncated at the length limit is treated as terminal exactly like one that ended with EOS (no bootstrap from
// V at the cut), as OpenRLHF and TRL do. rewards, values, mask: [B, T]; computed without grad (values detached).
// Worked example, γ = 0.9, λ = 0.8, r = (0.1, −0.2, 1.0), V = (0.5, 0.4, 0.3), all real:
//   δ_2 = 1.0 − 0.3 = 0.7                    A_2 = 0.7
//   δ_1 = −0.2 + 0.9·0.3 − 0.4 = −0.33        A_1 = −0.33 + 0.72·0.7 = 0.174
//   δ_0 = 0.1 + 0.9·0.4 − 0.5 = −0.04         A_0 = −0.04 + 0.72·0.174 = 0.08528
//   returns = (0.58528, 0.574, 1.0).
GaeOut gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma, double lambda);

// ---- losses ----

struct PolicyLossOut {
  at::Tensor per_token;        // [B, T] loss, 0 at padding; the caller divides by the global token count
  at::Tensor ratio;            // [B, T] π/π_old = exp(logp − old_logp), detached (for statistics)
  double clip_fraction = 0.0;  // fraction of real tokens where the clipped term was the larger (chosen) one
  double approx_kl = 0.0;      // masked mean of ½ (logp − old_logp)², an estimate of KL(π_old‖π)
};

// Which importance ratio the clipped surrogate uses (`ppo.policy_loss`).
enum class ImportanceRatio {
  kToken,     // ppo: per token, π(y_t)/π_old(y_t)
  kSequence,  // gspo: per sequence, (π(y)/π_old(y))^(1/|y|) (Zheng et al. 2025), the same for all its tokens
};
constexpr auto config_names(ImportanceRatio) {
  return std::array{std::pair{ImportanceRatio::kToken, "ppo"}, std::pair{ImportanceRatio::kSequence, "gspo"}};
}

// PPO clipped surrogate (Schulman et al. 2017), per token:
//   loss = max(−A·ratio, −A·clamp(ratio, 1 − ε_low, 1 + ε_high)),
// with ε_low = clip_eps and ε_high = clip_eps_high (0 = clip_eps; DAPO's clip-higher uses e.g. 0.2 / 0.28), and with
// dual clip c > 1 (Ye et al. 2020), for A < 0 only: loss = min(loss, −c·A), which bounds the loss when the ratio is
// far above 1 + ε on a bad action. dual_clip = 0 turns it off; any other c ≤ 1, clip_eps ≤ 0 and clip_eps_high < 0
// are ConfigErrors. logp (with grad), old_logp, advantages, mask: [B, T]. The token log-ratio is clamped to ±20
// before the exponential (veRL's bound): finite losses and gradients however far the policy moved.
// With ImportanceRatio::kSequence (GSPO) the ratio of every token of row b is s_b = exp(Σ_t m·(logp − old_logp) /
// |y_b|), computed as exp(logp − sg(logp) + sg(log s_b)) so that its gradient is s_b·∇logp_t (the log clamped at 10);
// dual clip is then refused.
// Example, ε = 0.2: A = 1, ratio 1.5 -> max(−1.5, −1.2) = −1.2 (clipped, no gradient); A = −1, ratio 1.5 ->
// max(1.5, 1.2) = 1.5 (unclipped), and with c = 1.3 -> min(1.5, 1.3) = 1.3.
PolicyLossOut policy_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& advantages,
                          const at::Tensor& mask, double clip_eps, double dual_clip = 0.0, double clip_eps_high = 0.0,
                          ImportanceRatio ratio = ImportanceRatio::kToken);

// How per-token losses become one number (`ppo.loss_aggregation`), always over the GLOBAL minibatch (every micro-batch
// and rank), so that how a minibatch is split never changes the loss or its gradient:
enum class LossAggregation {
  kTokenMean,            // Σ l / N_tokens: every token weighs the same (DAPO; PPO as before)
  kSeqMeanTokenMean,     // Σ_b (Σ_t l_bt / |y_b|) / N_seqs: every sequence weighs the same (GRPO's paper, GSPO)
  kSeqMeanTokenSumNorm,  // Σ l / (N_seqs · L_max), L_max = generation.max_new_tokens: a constant (Dr. GRPO)
};
constexpr auto config_names(LossAggregation) {
  return std::array{std::pair{LossAggregation::kTokenMean, "token_mean"},
                    std::pair{LossAggregation::kSeqMeanTokenMean, "seq_mean_token_mean"},
                    std::pair{LossAggregation::kSeqMeanTokenSumNorm, "seq_mean_token_sum_norm"}};
}

// The global counts an aggregation divides by: the minibatch's real tokens and sequences over all ranks and
// micro-batches, and the constant L_max.
struct LossNormalizer {
  double tokens = 1;
  double sequences = 1;
  double max_length = 1;
};

// This shard's share of the aggregated loss: summing it over the shards of a minibatch gives the aggregate of the
// whole minibatch. per_token, mask: [B, T] -> a 0-dim tensor (differentiable in per_token).
// Example, rows (1, 2 | 3, pad) with tokens 3, sequences 2, L_max 4: token_mean 6/3 = 2; seq_mean_token_mean
// (3/2 + 3/1)/2 = 2.25; seq_mean_token_sum_norm 6/(2·4) = 0.75.
at::Tensor aggregate_loss(const at::Tensor& per_token, const at::Tensor& mask, LossAggregation aggregation,
                          const LossNormalizer& norm);

// The actor's loss on one minibatch shard, as in PPO's equation:
//   L = agg(clip-surrogate) − c_H·agg(H) + β·agg(KL)
// with the clipped surrogate of policy_loss, the entropy bonus (entropy_coef c_H; entropy may be undefined when
// c_H = 0) and the KL penalty (kl_coef β with estimator `kl`, on when `kl_loss`), each aggregated by `aggregation`
// over the global minibatch (`norm`), so that summing gradients over shards gives the gradient of the global loss.
// The aggregated terms of this shard come back for statistics (they add up over shards).
struct ActorLossOptions {
  double clip_eps = 0.2;
  double clip_eps_high = 0.0;  // 0 = clip_eps
  double dual_clip = 0.0;
  ImportanceRatio ratio = ImportanceRatio::kToken;
  LossAggregation aggregation = LossAggregation::kTokenMean;
  double entropy_coef = 0.0;
  bool kl_loss = false;
  double kl_coef = 0.0;
  KlEstimator kl = KlEstimator::kK1;
};
struct ActorLossOut {
  at::Tensor loss;                                        // scalar, differentiable
  PolicyLossOut policy;                                   // per-token surrogate and ratios
  double policy_term = 0, entropy_term = 0, kl_term = 0;  // this shard's aggregated terms
};
ActorLossOut actor_loss(const at::Tensor& logp, const at::Tensor& entropy, const at::Tensor& old_logp,
                        const at::Tensor& ref_logp, const at::Tensor& advantages, const at::Tensor& mask,
                        const LossNormalizer& norm, const ActorLossOptions& options);

struct ValueLossOut {
  at::Tensor per_token;        // [B, T] loss, 0 at padding; the caller divides by the global token count
  double clip_fraction = 0.0;  // fraction of real tokens where the clipped error was the larger one
};

// Value loss, per token: ½·max((v − R)², (v_old + clamp(v − v_old, −c, c) − R)²) for clip_range c > 0, and
// ½·(v − R)² for c = 0 (off; c < 0 is a ConfigError). values (with grad), old_values, returns, mask: [B, T].
// Example, c = 0.2: v = 1.0, v_old = 0.5, R = 1.0 -> max(0, (0.7 − 1)²)/2 = 0.045.
ValueLossOut value_loss(const at::Tensor& values, const at::Tensor& old_values, const at::Tensor& returns,
                        const at::Tensor& mask, double clip_range);

// ---- logits ----

// Entropy of softmax(logits) at every position, −Σ_v p_v log p_v via log_softmax (stable for large logits; −inf
// logits contribute 0). logits: [B, T, V] -> [B, T]. A uniform distribution gives log V.
at::Tensor entropy_from_logits(const at::Tensor& logits);

// log softmax(logits)[token] at every position, computed as logits[token] − logsumexp(logits) so the [B, T, V]
// log-softmax is never materialised. logits: [B, T, V]; tokens: [B, T] int64 -> [B, T].
at::Tensor logprobs_from_logits(const at::Tensor& logits, const at::Tensor& tokens);

// 1 − Var[R − V] / Var[R] over the real tokens: 1 = perfect value predictions, 0 = no better than a constant,
// negative = worse. NaN when Var[R] = 0. values, returns, mask: [B, T].
double explained_variance(const at::Tensor& values, const at::Tensor& returns, const at::Tensor& mask);

}  // namespace troupe::rlhf
