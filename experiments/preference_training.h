// Preference-training kinds on the shared trainer (experiments/trainer.h), on {"prompt", "chosen", "rejected"}
// JSONL, or (data.format: rankings) on K-wise rankings (data/ranking_data.h):
//   rm  — a reward model: the GPT trunk plus a scalar head at the last real token, trained with the
//         Bradley-Terry loss −log σ(r_chosen − r_rejected − margin); logs pairwise accuracy; at the end the
//         reward mean and std over the training responses go into the final checkpoint ("reward.mean",
//         "reward.std") so a reward worker can normalise scores. On rankings: the InstructGPT K-wise loss,
//         experiments/ranking_training.h.
//   dpo — direct preference optimisation (DPO, IPO, cDPO) against a frozen reference: the starting model,
//         whose response log-probs are computed once up front (one no-grad pass over the data) rather than
//         kept in memory as a second model. Logs implicit rewards, margins and accuracy (TRL's names). On
//         rankings: the pairs data.ranking_pairs takes from each ranking, each an ordinary pair.
// One unit of the loss is a preference pair (a ranking for rm on rankings). Not PPO (rlhf/ and `troupe run`).
#pragma once

#include "experiments/registry.h"

namespace troupe::experiments {

ExperimentKind rm_kind();
ExperimentKind dpo_kind();

}  // namespace troupe::experiments
