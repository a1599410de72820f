// Moving GPT weights in and out of a module: Troupe-layout parameter lists (as models/hf_gpt2.h takes them),
// Hugging Face directories (GPT-2: config.json + model.safetensors; the Llama family: models/hf_llama.h), with one
// entry point for both. Not a checkpoint manager (optimizer state and resume live with the trainer).
#pragma once

#include <filesystem>

#include "models/gpt.h"
#include "models/hf_llama.h"
#include "models/safetensors.h"

namespace troupe::models {

// The trunk and LM head parameters in canonical order (no value/reward heads, no LoRA tensors). When LoRA
// adapters are present and unmerged, their contribution is folded into the returned weights (copies); quantized
// layers (and a quantized tied embedding) give their dequantized weights, adapters folded in (a QLoRA model
// exported merged, in fp32).
NamedTensors gpt_trunk_parameters(Gpt& model);

// Copies `params` (Troupe layout, e.g. from from_hf_gpt2) into the model's trunk and LM head. DataError
// (prefixed with `source`) for a missing, unexpected or misshaped tensor; the model's dtype is kept.
void load_gpt_trunk_parameters(Gpt& model, const NamedTensors& params, const std::string& source);

// A model built from a Hugging Face GPT-2 directory (config.json + model.safetensors), with extra heads.
Gpt load_hf_gpt2(const std::filesystem::path& dir, GptHeads heads = GptHeads());
// Writes the trunk (LoRA folded in) as a Hugging Face GPT-2 directory.
void save_hf_gpt2(const std::filesystem::path& dir, Gpt& model);

// True when `dir` holds config.json and model.safetensors or model.safetensors.index.json (no file is read).
bool is_hf_model_dir(const std::filesystem::path& dir);
// A model from a Hugging Face directory of any class Troupe reads, by config.json's model_type: gpt2 (or none, as in
// old GPT-2 configs) -> load_hf_gpt2; llama, qwen2, mistral (or only their architectures) -> load_hf_llama. DataError
// naming config.json for any other model_type.
Gpt load_hf_model(const std::filesystem::path& dir, GptHeads heads = GptHeads());
// Writes the model as the Hugging Face directory of its architecture: gpt2 -> save_hf_gpt2, llama -> save_hf_llama
// (`options` apply to it only).
void save_hf_model(const std::filesystem::path& dir, Gpt& model, const HfExportOptions& options = HfExportOptions());

// A quantized model directory (`troupe quantize`): model.safetensors holding every tensor of the model as it runs
// (codes and scales as "<layer>.qweight", "<layer>.qscale", ...; the released fp32 weights are left out; the NF4
// and dynamic code books as "quantization.nf4_code_book" / "quantization.dynamic_code_book" when used), its
// "__metadata__" recording format "troupe-quantized", the GPT config, the heads and the quantization; and
// quantization.json, the same record plus sizes, for people. Atomic like save_safetensors.
void save_quantized_gpt(const std::filesystem::path& dir, Gpt& model, const std::string& source = "");
// True when `dir` holds quantization.json and model.safetensors.
bool is_quantized_gpt_dir(const std::filesystem::path& dir);
// Rebuilds the model saved by save_quantized_gpt. DataError naming the file for a missing or inconsistent part.
Gpt load_quantized_gpt(const std::filesystem::path& dir);

}  // namespace troupe::models
