// Advantage estimators of RL post-training as pure tensor functions, one choice in the config
// (`ppo.advantage_estimator`): GAE with a critic (PPO), and the critic-free family — GRPO, Dr. GRPO, RLOO,
// REINFORCE++, REINFORCE++-baseline and ReMax — that derive a baseline from the other samples of the same prompt,
// from the global batch, or from a greedy rollout. Not the policy loss (rlhf/ppo_math.h) and not the controller.
//
// Conventions as rlhf/ppo_math.h: per-token tensors [B, T] over response positions with a prefix mask. Groups:
// rows g·G … g·G + G − 1 hold the G samples of one prompt (the controller repeats each prompt G times), so B must
// be a multiple of G.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <utility>

namespace troupe::rlhf {

enum class AdvantageEstimator {
  kGae,                  // PPO: GAE(γ, λ) over the critic's values, whitened over the batch (ppo.whiten_advantages)
  kGrpo,                 // (s − mean_g) / (std_g + 1e-6) per group (Shao et al. 2024), broadcast to every token
  kDrGrpo,               // s − mean_g: no std division (Liu et al. 2025, "Understanding R1-Zero-like training")
  kRloo,                 // s − mean of the OTHER G − 1 samples = G/(G−1)·(s − mean_g) (Ahmadian et al. 2024)
  kReinforcePp,          // discounted returns of the KL-shaped rewards, whitened over the global batch (Hu 2025)
  kReinforcePpBaseline,  // as REINFORCE++ with s − mean_g as the score (OpenRLHF's reinforce_baseline)
  kRemax,                // discounted returns minus the greedy response's score (Li et al. 2023)
};
constexpr auto config_names(AdvantageEstimator) {
  return std::array{std::pair{AdvantageEstimator::kGae, "gae"},
                    std::pair{AdvantageEstimator::kGrpo, "grpo"},
                    std::pair{AdvantageEstimator::kDrGrpo, "dr_grpo"},
                    std::pair{AdvantageEstimator::kRloo, "rloo"},
                    std::pair{AdvantageEstimator::kReinforcePp, "reinforce_pp"},
                    std::pair{AdvantageEstimator::kReinforcePpBaseline, "reinforce_pp_baseline"},
                    std::pair{AdvantageEstimator::kRemax, "remax"}};
}

// Only GAE needs a critic; the others start no critic worker.
constexpr bool needs_critic(AdvantageEstimator e) { return e == AdvantageEstimator::kGae; }
// The estimators whose baseline is the group of samples of one prompt (group_size ≥ 2).
constexpr bool needs_groups(AdvantageEstimator e) {
  return e == AdvantageEstimator::kGrpo || e == AdvantageEstimator::kDrGrpo || e == AdvantageEstimator::kRloo ||
         e == AdvantageEstimator::kReinforcePpBaseline;
}

// Per-sequence advantages from per-sequence scores within groups of `group_size` consecutive rows, for kGrpo,
// kDrGrpo, kRloo and kReinforcePpBaseline (the latter's s − mean_g, before shaping and whitening). std is the
// Bessel-corrected group standard deviation (torch.std, as veRL). scores: [B] -> [B] float64. ConfigError for
// another estimator or group_size < 2; DataError when B is not a multiple of group_size.
// Example, G = 4, scores (1, 0, 0, 1): mean 0.5, std 0.5774 -> GRPO (0.866, −0.866, −0.866, 0.866), Dr. GRPO
// (0.5, −0.5, −0.5, 0.5), RLOO (2/3, −2/3, −2/3, 2/3).
at::Tensor group_advantages(const at::Tensor& scores, int64_t group_size, AdvantageEstimator estimator);

// Discounted reward-to-go per token, G_t = r_t + γ·G_{t+1}, ending at the last real token. rewards, mask: [B, T]
// -> [B, T], 0 at padding. Example, γ = 0.5, r = (1, 0, 2): G = (1.5, 1, 2).
at::Tensor discounted_returns(const at::Tensor& rewards, const at::Tensor& mask, double gamma);

// DAPO's soft overlong punishment added to the score: 0 for a response of at most L_max − buffer tokens, then
// falling linearly to −penalty at L_max = max_new_tokens: min(−(len − (L_max − buffer)) / buffer · penalty, 0).
// lengths: [B] response tokens (stop token included) -> [B] float32; all zeros when buffer = 0.
// Example, L_max 20, buffer 4, penalty 1: lengths (16, 18, 20) -> (0, −0.5, −1).
at::Tensor overlong_shaping(const at::Tensor& lengths, int64_t max_new_tokens, int64_t buffer, double penalty);

struct AdvantageInputs {
  at::Tensor scores;       // [B] sequence scores (after adjust_scores)
  at::Tensor kl;           // [B, T] per-token log π_old − log π_ref (k1), for the KL penalty in the reward
  at::Tensor mask;         // [B, T] response mask
  at::Tensor values;       // [B, T] critic values (kGae only)
  at::Tensor baseline;     // [B] the greedy response's score for each row's prompt (kRemax only)
  double kl_coef = 0;      // β of the KL penalty in the reward (0 when the KL is a loss term)
  double gamma = 1.0;      // discount (GAE, REINFORCE++, ReMax)
  double lambda = 0.95;    // GAE λ
  int64_t group_size = 1;  // G
  bool whiten_gae = true;  // kGae: whiten the advantages over the batch
};

struct AdvantageOutputs {
  at::Tensor advantages;  // [B, T], 0 at padding, no grad
  at::Tensor returns;     // [B, T] value targets (kGae only; undefined otherwise)
  at::Tensor raw;         // [B, T] before any whitening, for statistics
};

// The advantages of `estimator`. For the outcome estimators (GRPO, Dr. GRPO, RLOO) the score of a row is its
// sequence score plus its summed KL penalty −β·Σ_t kl_t (the sum of the shaped rewards, as veRL); REINFORCE++,
// its baseline variant and ReMax discount the shaped per-token rewards (rlhf/ppo_math.h shape_rewards).
AdvantageOutputs compute_advantages(AdvantageEstimator estimator, const AdvantageInputs& in);

}  // namespace troupe::rlhf
