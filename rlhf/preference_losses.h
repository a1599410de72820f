// Preference losses as pure tensor functions: the Bradley-Terry reward-model loss, its K-wise ranking form
// (InstructGPT) and the DPO family (sigmoid DPO, IPO, conservative / label-smoothed DPO). Every function returns one
// loss per pair or prompt ([B]) so the caller chooses the reduction (a mean over the global batch under data
// parallelism). No models, no data here.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <string>
#include <utility>

namespace troupe::rlhf {

// Bradley-Terry: -log σ(r_chosen − r_rejected − margin), per pair. r_chosen, r_rejected, margin: [B] (margin may
// be undefined = 0). Computed as softplus(−x), which is exact for large |x| where log(sigmoid(x)) underflows.
at::Tensor bradley_terry_loss(const at::Tensor& r_chosen, const at::Tensor& r_rejected,
                              const at::Tensor& margin = at::Tensor());

// The InstructGPT reward-model loss (Ouyang et al. 2022, eq. 1) on K-wise rankings. Prompt b ranks its K_b real
// responses (mask); P_b = {(w, l) : ranks[b][w] < ranks[b][l]} are its non-tied pairs, w ranked better (a lower
// number; ties make no pair), and its loss is the mean over them:
//   loss_b = −1/|P_b| Σ_{(w,l) ∈ P_b} log σ(r_bw − r_bl)        (= the paper's 1/C(K,2) when there are no ties)
// `loss` is the mean of loss_b over the prompts with |P_b| > 0; a prompt whose responses are all tied (or that has
// fewer than 2 real responses) has loss_b = 0 and is left out of that mean (loss = 0 when no prompt has a pair).
// All K_b responses of a prompt are scored once and compared through a (B, K, K) difference: the point of the
// paper's form (each response forwarded once, not once per pair; the comparisons of a prompt one batch element).
// Worked example: rewards (1, 0, 2), ranks (1, 2, 2): pairs (0,1) and (0,2) (1 and 2 are tied), so
//   loss = −½ [log σ(1 − 0) + log σ(1 − 2)] = ½ (0.31326 + 1.31326) = 0.81326.
// rewards: (B, K) float; ranks: (B, K) integer, 1 = best (values under the mask's zeros are ignored); mask: (B, K)
// bool, true on real responses (undefined = all real), so prompts with different K share a batch by padding.
struct RankingLossOut {
  at::Tensor loss;        // scalar: mean of per_prompt over the prompts with pairs > 0
  at::Tensor per_prompt;  // [B] loss_b, 0 where pairs == 0
  at::Tensor pairs;       // [B] int64 |P_b|, the comparisons of each prompt
  at::Tensor correct;     // [B] int64 pairs of P_b the rewards order right (r_w > r_l), detached
};
RankingLossOut ranking_loss(const at::Tensor& rewards, const at::Tensor& ranks, const at::Tensor& mask = at::Tensor());

enum class DpoLoss {
  kSigmoid,       // DPO (Rafailov et al. 2023): −log σ(β h)
  kIpo,           // IPO (Azar et al. 2023): (h − 1/(2β))²
  kConservative,  // cDPO / label smoothing ε: −(1−ε) log σ(β h) − ε log σ(−β h)
};
// Config names: dpo | ipo | cdpo.
constexpr auto config_names(DpoLoss) {
  return std::array{std::pair{DpoLoss::kSigmoid, "dpo"}, std::pair{DpoLoss::kIpo, "ipo"},
                    std::pair{DpoLoss::kConservative, "cdpo"}};
}

struct DpoOptions {
  double beta = 0.1;  // KL strength: higher keeps the policy closer to the reference
  DpoLoss loss = DpoLoss::kSigmoid;
  double label_smoothing = 0.0;  // ε, the assumed probability that a preference label is flipped (cDPO only)
};

struct DpoLossOut {
  at::Tensor loss;              // [B] per-pair loss
  at::Tensor chosen_rewards;    // [B] implicit reward β (log π(y_w|x) − log π_ref(y_w|x)), detached
  at::Tensor rejected_rewards;  // [B] implicit reward β (log π(y_l|x) − log π_ref(y_l|x)), detached
};

// Worked example of the log-ratio h: with policy log-probs (−3, −5) and reference log-probs (−4, −4) for
// (chosen, rejected), h = (−3 − −4) − (−5 − −4) = 1 − (−1) = 2, and the DPO loss at β = 0.5 is
// −log σ(1) = 0.3133. All inputs are [B] sequence log-probabilities (summed over response tokens; IPO as in
// the paper and TRL usually takes per-token means — the caller decides which it passes).
DpoLossOut dpo_loss(const at::Tensor& policy_chosen, const at::Tensor& policy_rejected,
                    const at::Tensor& reference_chosen, const at::Tensor& reference_rejected,
                    const DpoOptions& options);

}  // namespace troupe::rlhf
