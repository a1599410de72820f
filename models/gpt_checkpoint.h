// A GPT inside a Troupe checkpoint, self-describing: its tensors as one group plus its shape, heads and LoRA
// settings as extra state, so `troupe generate`, the RLHF workers and `init_from` can rebuild it from the
// checkpoint alone. Not the checkpoint format itself (core/checkpoint_manager.h) and not optimizer state.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/checkpoint_state.h"
#include "models/gpt.h"

namespace troupe::models {

// GptConfig as one line of JSON (all fields), as stored under "<group>.config".
std::string gpt_config_json(const GptConfig& config);

// A GPT detached from its module: what a checkpoint stores of it, and what a PPO worker role sends the controller to
// be checkpointed. The checkpoint schema (the tensor group and the "<group>.*" extra keys) lives only here.
struct GptState {
  std::map<std::string, at::Tensor> tensors;  // parameters and buffers by name
  std::string config_json;                    // gpt_config_json of its GptConfig
  bool value_head = false;
  bool reward_head = false;
  double lora_alpha = 0.0;   // the adapters' alpha (0 without LoRA)
  std::string quantization;  // GptQuantConfig::to_json when the model is quantized, else empty
};

// Copies of the model's tensors (on its device) and its description. Error when a LoRA adapter is merged (its
// weight would count it twice on load).
GptState gpt_state(Gpt& model);
// Stores `gpt` as tensor group `group` (moved to the CPU; CPU tensors are shared, not copied) and extra keys
// "<group>.config", "<group>.heads" and
// "<group>.lora_alpha" (and "<group>.quantization" for a quantized model).
void add_gpt_state_to_checkpoint(core::CheckpointState& state, const std::string& group, const GptState& gpt);
// The GptState stored under `group`; DataError naming the group when there is none.
GptState gpt_state_from_checkpoint(const core::CheckpointState& state, const std::string& group);
// Copies `gpt`'s tensors into `model` (onto its device). DataError naming every missing, extra or misshapen tensor.
void load_gpt_state(Gpt& model, const GptState& gpt);

// Adds `model` as tensor group `group` (parameters and buffers, LoRA adapters unmerged as they are) and records
// under extra keys "<group>.config" (GptConfig as JSON), "<group>.heads" and "<group>.lora_alpha". Error when an
// adapter is merged (its weight would count it twice on load).
void add_gpt_to_checkpoint(core::CheckpointState& state, const std::string& group, Gpt& model);

// Rebuilds the GPT stored by add_gpt_to_checkpoint: same shape, heads and adapters, then loads the tensors.
// DataError naming the group when the checkpoint holds no such model or it does not match its description.
Gpt gpt_from_checkpoint(const core::CheckpointState& state, const std::string& group = "model");

// The checkpoint at `path`: a step directory (holds manifest.bin), a checkpoint root (holds `latest`), or a run
// directory (holds checkpoints/, the latest complete one is used). IoError naming the path otherwise.
core::CheckpointState load_checkpoint_at(const std::filesystem::path& path);

// A model to start from: a Hugging Face directory (load_hf_model: GPT-2, Llama, Qwen2, Mistral), a Troupe run /
// checkpoint directory, or a quantized model directory (`troupe quantize`). Only the trunk and LM head are taken (LoRA
// adapters folded in); the heads asked for are fresh. A quantized model (a quantized directory, or a checkpoint of a
// QLoRA run) comes back as it is, adapters unmerged, and only when asked for the heads it has (ConfigError otherwise).
// ConfigError naming the path when it is neither.
Gpt load_pretrained_gpt(const std::filesystem::path& path, GptHeads heads = GptHeads());

// True when `path` looks like any of the three above (cheap; no file is read).
bool is_troupe_checkpoint_path(const std::filesystem::path& path);

}  // namespace troupe::models
