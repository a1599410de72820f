// Pairwise preference losses as pure tensor functions: the Bradley-Terry reward-model loss and the DPO family
// (sigmoid DPO, IPO, conservative / label-smoothed DPO). Every function returns one loss per pair ([B]) so the
// caller chooses the reduction (a mean over the global batch under data parallelism). No models, no data here.
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
