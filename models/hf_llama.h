// Hugging Face interop for the Llama-family decoder (GptConfig::arch = llama): LlamaForCausalLM, Qwen2ForCausalLM and
// MistralForCausalLM directories (config.json + model.safetensors or sharded safetensors) in and out. The trunk's
// parameter names and [out, in] layouts are already transformers', so this is a config mapping plus name and shape
// checks. Not GPT-2 (models/hf_gpt2.h), not a tokenizer exporter, and no pytorch_model.bin.
//
// config.json <-> GptConfig (transformers 5 writes RoPE settings as `rope_parameters`; the legacy `rope_theta` and
// `rope_scaling` keys are read too, and written beside it for older readers):
//   hidden_size = n_embd, num_hidden_layers = n_layer, num_attention_heads = n_head, num_key_value_heads = n_kv_head,
//   head_dim = head_size, intermediate_size, vocab_size, rms_norm_eps = layer_norm_eps, tie_word_embeddings,
//   max_position_embeddings = block_size (dynamic NTK: see read_hf_llama_config), rope_type none/linear/dynamic/llama3,
//   llama: attention_bias = qkv_bias = o_bias, mlp_bias; qwen2: qkv_bias (always), use_sliding_window +
//   sliding_window when every layer slides; mistral: sliding_window (absent = 4096, null = off).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "models/gpt.h"

namespace troupe::models {

// The transformers class a Llama-family model is written as.
enum class HfLlamaType { kLlama, kQwen2, kMistral };
// "llama", "qwen2", "mistral" (config.json's model_type).
std::string hf_model_type_name(HfLlamaType type);
// "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM".
std::string hf_architecture_name(HfLlamaType type);
// The type from a model_type; nullopt for any other.
std::optional<HfLlamaType> hf_llama_type(const std::string& model_type);

// The class that represents `cfg`: qwen2 when qkv_bias && !o_bias && !mlp_bias, else mistral when sliding_window > 0
// (and no biases), else llama. ConfigError when no class can (e.g. an o_proj bias without q/k/v biases, or a
// sliding window with an o_proj or MLP bias).
HfLlamaType default_hf_llama_type(const GptConfig& cfg);

// Reads a llama / qwen2 / mistral config.json as transformers' from_pretrained would build it (absent keys take the
// class defaults; sizes are required). Dynamic NTK scaling: transformers scales past max_position_embeddings and sets
// no hard limit, so rope_original_context = max_position_embeddings and block_size = max_position_embeddings * factor
// (the context the factor is meant to reach). DataError naming the file and the key for anything Troupe cannot
// represent: another model_type or architecture, hidden_act other than silu, rope types other than
// default/linear/dynamic/llama3 (yarn, longrope, ...), per-layer-type or partial rotary embeddings, a Qwen2 mix of
// sliding and full attention layers, attention_dropout > 0, quantization_config, and sizes GptConfig rejects (an odd
// head_dim, kv heads that do not divide the heads, ...).
GptConfig read_hf_llama_config(const std::filesystem::path& path);

// Writes config.json for `cfg` (arch llama) as `type` (e.g. default_hf_llama_type(cfg)), so that from_pretrained
// builds the same model: architectures, model_type, sizes, rope_parameters (and rope_theta / rope_scaling), biases,
// the sliding window, tie_word_embeddings, `dtype` (the weights' torch dtype name), bos/eos/pad ids null (Troupe's
// model knows no tokenizer). Dropout is a training setting and is written as attention_dropout 0. Dynamic NTK writes
// max_position_embeddings = rope_original_context (the threshold transformers scales past); reading it back gives
// block_size = that * factor. ConfigError when `type` cannot represent `cfg`. Written atomically.
void write_hf_llama_config(const std::filesystem::path& path, const GptConfig& cfg, HfLlamaType type,
                           const std::string& dtype = "float32");

// A model built from a Hugging Face llama / qwen2 / mistral directory: config.json, and model.safetensors or the
// sharded index, read one shard at a time straight into the model (F32, F16, BF16 or F64 tensors, converted to the
// model's fp32), with extra heads. lm_head.weight may be absent (tied) or present (tied: it must equal
// model.embed_tokens.weight); rotary_emb.inv_freq buffers of old checkpoints are ignored. DataError naming the file
// and the tensor for an unexpected, misshapen, non-floating, duplicated or missing tensor (and as
// for_each_safetensors_file and read_hf_llama_config for the index and config.json).
Gpt load_hf_llama(const std::filesystem::path& dir, GptHeads heads = GptHeads());

struct HfExportOptions {
  std::optional<HfLlamaType> type;              // the class to write (default: default_hf_llama_type)
  uint64_t max_shard_bytes = 2'000'000'000ULL;  // larger weights are split into shards with an index
};

// Writes the trunk (LoRA folded in, quantized layers dequantized: gpt_trunk_parameters) in the model's dtype as a
// Hugging Face directory: config.json and model.safetensors or shards + index (models/safetensors_shards.h).
void save_hf_llama(const std::filesystem::path& dir, Gpt& model, const HfExportOptions& options = HfExportOptions());

}  // namespace troupe::models
