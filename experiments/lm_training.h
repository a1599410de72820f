// Language-model training kinds on the shared trainer (experiments/trainer.h): `pretrain` (causal LM on token
// files, random windows) and `sft` (prompt/response JSONL, loss on response tokens only). Each unit of the
// loss is a token; the loss is the token mean over the whole global batch. At the end the model is exported as
// a Hugging Face directory (<run>/hf; GPT-2 or Llama-family) for `troupe generate`, `troupe eval perplexity` and
// Python.
#pragma once

#include "experiments/registry.h"
#include "experiments/trainer.h"

namespace troupe::experiments {

ExperimentKind pretrain_kind();
ExperimentKind sft_kind();

// The objectives of `pretrain` and `sft` (by the config's kind), for run_training.
ObjectiveFactory lm_objectives();

}  // namespace troupe::experiments
