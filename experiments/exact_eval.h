// Exact evaluation of a policy on a tiny vocabulary (`troupe eval exact`): every fixed-length response y of L
// tokens over the model's V ids (V^L of them, no EOS) is enumerated for each prompt x, so E_π[r*] and
// KL(π‖π_ref) are sums rather than Monte-Carlo estimates, and so is the KL-regularised optimum
// π*_β(y|x) ∝ π_ref(y|x) exp(r*(x, y)/β) (Rafailov et al. 2023, eq. 4) that traces the reward-KL frontier.
// Not a sampler and not for real vocabularies: V^L is capped (kMaxResponses).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "models/gpt.h"
#include "rlhf/reward_functions.h"

namespace troupe::experiments {

// Most responses per prompt enumerated (V^L); beyond that exact evaluation is refused (ConfigError).
inline constexpr int64_t kMaxResponses = int64_t{1} << 20;

struct ExactEvalOptions {
  std::vector<std::vector<int64_t>> prompts;  // prompt ids, all of one length P >= 1
  int64_t response_length = 4;                // L: tokens per response (fixed length, no stop token)
  std::vector<double> betas;                  // β of each frontier point π*_β (each > 0)
  int64_t batch_size = 8192;                  // sequences per forward pass
};

// Expectations averaged over the prompts (each prompt weighted 1/N).
struct ExactPoint {
  double beta = 0;    // 0 for a policy (not an optimum)
  double reward = 0;  // (1/N) Σ_x Σ_y π(y|x) r*(x, y)
  double kl = 0;      // (1/N) Σ_x Σ_y π(y|x) (log π(y|x) − log π_ref(y|x))
};

struct ExactEvalResult {
  ExactPoint policy;                // the evaluated policy
  ExactPoint reference;             // π_ref itself (KL 0 up to rounding)
  std::vector<ExactPoint> optimum;  // π*_β for each β of the options, in order
  double max_mass_error = 0;        // max_x |Σ_y π(y|x) − 1| over policy and reference: a check on the enumeration
  int64_t prompts = 0;              // N
  int64_t responses = 0;            // V^L per prompt
};

// Every response of `length` tokens over ids [0, vocab) in lexicographic order (the last position varies
// fastest): [V^L, L] int64. Example V = 2, L = 2: [[0, 0], [0, 1], [1, 0], [1, 1]]. ConfigError above kMaxResponses.
at::Tensor enumerate_responses(int64_t vocab, int64_t length);

// log π(y|x) of every (prompt, response) pair: [N, M] float64 for prompts [N, P] and responses [M, L], summed over
// the L response tokens (one no-grad forward pass per batch of sequences x ++ y, no padding).
at::Tensor sequence_logprobs(models::Gpt& model, const at::Tensor& prompts, const at::Tensor& responses,
                             int64_t batch_size);

// r*(x, y) for every pair: [N, M] float64. The reward sees each response as truncated (ended_with_eos = false).
at::Tensor reward_table(const rlhf::RewardFunction& reward, const at::Tensor& prompts, const at::Tensor& responses);

// Exact expectations of a policy from its log-probs against the reference's, all [N, M] float64.
ExactPoint exact_point(const at::Tensor& logp, const at::Tensor& logp_ref, const at::Tensor& reward);

// π*_β from the reference's log-probs and the reward ([N, M]): log π* = log π_ref + r/β − log Z_β(x).
// Worked example: uniform π_ref over V = 2, L = 2, pattern reward target (1, 1) (r = (#matches)/2): π* factorises,
// each position matches with p = e^{1/(2β)} / (1 + e^{1/(2β)}), so E[r*] = p and KL = 2 (p log 2p + (1−p) log 2(1−p)).
ExactPoint optimal_point(const at::Tensor& logp_ref, const at::Tensor& reward, double beta);

// The whole evaluation. ConfigError for an empty or ragged prompt list, ids outside the policy's vocabulary,
// models of different vocabularies, P + L above the block size, or a β <= 0.
ExactEvalResult exact_eval(models::Gpt& policy, models::Gpt& reference, const rlhf::RewardFunction& reward,
                           const ExactEvalOptions& options);

// Every prompt of `length` ids over [first_id, vocab) (the synthetic PPO prompts are uniform over [1, V), so
// first_id 1 enumerates their whole distribution): (V − first_id)^length prompts, lexicographic.
std::vector<std::vector<int64_t>> all_prompts(int64_t vocab, int64_t length, int64_t first_id = 1);

// Writes one CSV row per (prompt, response): prompt,response,logp_policy,logp_reference,reward with ids joined by
// spaces (used to sample preference data from π_ref with its exact probabilities). IoError when unwritable.
void write_distribution_csv(const std::filesystem::path& path, models::Gpt& policy, models::Gpt& reference,
                            const rlhf::RewardFunction& reward, const ExactEvalOptions& options);

// The result as one JSON object ({"policy": {...}, "reference": {...}, "optimum": [...], ...}).
std::string exact_eval_json(const ExactEvalResult& result);

}  // namespace troupe::experiments
