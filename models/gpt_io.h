// Moving GPT weights in and out of a module: Troupe-layout parameter lists (as models/hf_gpt2.h takes them),
// and Hugging Face GPT-2 directories (config.json + model.safetensors). Not a checkpoint manager (optimizer
// state and resume live with the trainer).
#pragma once

#include <filesystem>

#include "models/gpt.h"
#include "models/safetensors.h"

namespace troupe::models {

// The trunk and LM head parameters in canonical order (no value/reward heads, no LoRA tensors). When LoRA
// adapters are present and unmerged, their contribution is folded into the returned weights (copies).
NamedTensors gpt_trunk_parameters(Gpt& model);

// Copies `params` (Troupe layout, e.g. from from_hf_gpt2) into the model's trunk and LM head. DataError
// (prefixed with `source`) for a missing, unexpected or misshaped tensor; the model's dtype is kept.
void load_gpt_trunk_parameters(Gpt& model, const NamedTensors& params, const std::string& source);

// A model built from a Hugging Face GPT-2 directory (config.json + model.safetensors), with extra heads.
Gpt load_hf_gpt2(const std::filesystem::path& dir, GptHeads heads = GptHeads());
// Writes the trunk (LoRA folded in) as a Hugging Face GPT-2 directory.
void save_hf_gpt2(const std::filesystem::path& dir, Gpt& model);

}  // namespace troupe::models
