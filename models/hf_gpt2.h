// Hugging Face GPT-2 interop: renames and transposes between Troupe's GPT parameters and a GPT2LMHeadModel
// state dict, GPT2Config's config.json, and a save_pretrained-style directory (config.json +
// model.safetensors; sharded checkpoints are read too). Not a model and not a tokenizer exporter; pytorch_model.bin
// is not read.
//
// Troupe names parameters exactly as GPT2LMHeadModel but keeps torch::nn::Linear layout [out, in]; Hugging
// Face keeps attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj as Conv1D [in, out]. With d = n_embd:
//   transformer.wte.weight (V, d)            transformer.wpe.weight (block_size, d)
//   transformer.h.{i}.ln_1.weight/bias (d)   transformer.h.{i}.attn.c_attn.weight (3d, d)  bias (3d)
//   transformer.h.{i}.attn.c_proj.weight (d, d)  bias (d)   transformer.h.{i}.ln_2.weight/bias (d)
//   transformer.h.{i}.mlp.c_fc.weight (4d, d)  bias (4d)    transformer.h.{i}.mlp.c_proj.weight (d, 4d)  bias (d)
//   transformer.ln_f.weight/bias (d)          lm_head.weight (V, d), only when embeddings are untied
#pragma once

#include <filesystem>
#include <string>

#include "models/gpt_config.h"
#include "models/safetensors.h"

namespace troupe::models {

// Troupe GPT parameters -> Hugging Face GPT2LMHeadModel tensors (same order, "transformer." names, the four
// Conv1D weights transposed to contiguous [in, out] copies; other tensors are shared, not copied).
// lm_head.weight is written only when untied (as save_pretrained does for gpt2). cfg.bias == false: Hugging
// Face GPT-2 always has biases, so zero biases are emitted (the same function). DataError naming every
// missing, unexpected or wrongly shaped tensor.
NamedTensors to_hf_gpt2(const NamedTensors& troupe_params, const GptConfig& cfg);

// The inverse, in Troupe's canonical order. Accepts names with or without the "transformer." prefix (the
// original `gpt2` hub checkpoint stores "h.0.attn.c_attn.weight", "wte.weight"), ignores the attention-mask
// buffers attn.bias / attn.masked_bias, and accepts lm_head.weight with tied embeddings only when it equals
// wte. cfg.bias == false: the biases must be present and zero, and are dropped. Dtypes are kept as stored.
// DataError, prefixed with `source` (e.g. the file), naming every missing, unexpected or misshaped tensor.
NamedTensors from_hf_gpt2(const NamedTensors& hf_params, const GptConfig& cfg,
                          const std::string& source = "Hugging Face GPT-2 weights");

// GPT2Config as config.json: model_type "gpt2", architectures ["GPT2LMHeadModel"], n_layer, n_head, n_embd,
// n_positions = n_ctx = block_size, vocab_size, layer_norm_epsilon, activation_function "gelu_new",
// resid/embd/attn_pdrop = dropout, tie_word_embeddings. Written atomically.
void write_hf_config_json(const std::filesystem::path& path, const GptConfig& cfg);

// Reads config.json. Required: n_layer, n_head, n_embd, n_positions (or n_ctx), vocab_size; the rest take
// GPT2Config's defaults (dropout 0.1, epsilon 1e-5, tied). DataError naming the file and key for bad JSON,
// a missing or mistyped key, model_type other than gpt2, an activation other than gelu_new (or its alias
// gelu_pytorch_tanh), n_inner != 4 * n_embd, unequal resid/embd/attn_pdrop, unsupported attention options,
// or sizes GptConfig rejects. The result has bias = true.
GptConfig read_hf_config_json(const std::filesystem::path& path);

// Writes dir/config.json and dir/model.safetensors (metadata {"format": "pt"}, which transformers requires),
// creating dir. `params` in Troupe layout, as to_hf_gpt2 takes them.
void export_hf_gpt2_dir(const std::filesystem::path& dir, const NamedTensors& params, const GptConfig& cfg);

struct HfGpt2Checkpoint {
  GptConfig config;     // from config.json
  NamedTensors params;  // Troupe layout, canonical order
};

// Reads dir/config.json and dir/model.safetensors or its shards (as save_pretrained writes them, or the hub's `gpt2`).
HfGpt2Checkpoint import_hf_gpt2_dir(const std::filesystem::path& dir);

// Troupe's parameter names and shapes for `cfg`, in canonical order (wte, wpe, blocks, ln_f, lm_head).
std::vector<std::pair<std::string, std::vector<int64_t>>> gpt_parameter_shapes(const GptConfig& cfg);

}  // namespace troupe::models
