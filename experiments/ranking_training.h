// The reward model trained from K-wise rankings (`troupe train rm` with data.format: rankings): each prompt's K
// responses go through the model together, once per step, and the InstructGPT loss (rlhf::ranking_loss) compares
// all their non-tied pairs as one batch element. The unit of the loss is a prompt's ranking; metrics are the loss,
// the pairwise accuracy over the non-tied pairs and the number of comparisons per global batch. Not the pairwise
// reward model or DPO (experiments/preference_training.h; DPO on rankings trains on the pairs a ranking implies).
#pragma once

#include <memory>

#include "core/run_log.h"
#include "experiments/trainer.h"

namespace troupe::experiments {

// train.batch_size counts rankings (prompts): a micro-batch forwards the sum of their K responses as rows.
std::unique_ptr<Objective> make_ranking_rm_objective(const TrainingConfig& c, models::Gpt& model, core::RunLog* log);

}  // namespace troupe::experiments
