// A GPT as a GGUF file that llama.cpp runs: tensor names, layouts, per-tensor encodings and model metadata as
// llama.cpp's convert_hf_to_gguf.py writes them for GPT2LMHeadModel ("gpt2"), LlamaForCausalLM ("llama", q/k rows
// permuted to ggml's interleaved RoPE) and Qwen2ForCausalLM ("qwen2", NeoX RoPE, q/k/v biases). Not the file format
// (core/gguf_writer.h) and not the tokenizer section (tokenizers/gguf_vocab.h gives its key/values).
//
// Encodings: the file type (f32, f16, bf16, q8_0) applies to the 2-D weights; 1-D tensors (norms, biases,
// rope_freqs) and GPT-2's position embedding stay F32, as the converter keeps them. A q8_0 file's matrix whose rows
// are not a multiple of 32 long falls back to F16 (the converter's QuantError fallback); the summary lists them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/gguf_writer.h"
#include "models/gpt.h"

namespace troupe::models {

enum class GgufFileType { kF32, kF16, kBF16, kQ8_0 };

// "f32" | "f16" | "bf16" | "q8_0"; ConfigError naming the accepted values otherwise.
GgufFileType parse_gguf_file_type(const std::string& name);
const char* gguf_file_type_name(GgufFileType type);

// The GGUF architecture llama.cpp runs `config` as: "gpt2"; "qwen2" for a Llama-family model with q/k/v biases and
// no other biases (and n_head * head_dim == n_embd); otherwise "llama". ConfigError for what llama.cpp would run
// differently: dynamic NTK RoPE scaling, a sliding window.
std::string gguf_architecture(const GptConfig& config);

// The general.* and <arch>.* key/values of `config` as convert_hf_to_gguf writes them.
std::vector<core::GgufKeyValue> gguf_model_metadata(const GptConfig& config, GgufFileType type,
                                                    const std::string& name);

// One tensor of the file, before encoding.
struct GgufTensor {
  std::string name;    // "blk.0.attn_q.weight", ...
  std::string source;  // the Troupe parameter it comes from ("" for a derived one: rope_freqs, a zero bias)
  torch::Tensor data;  // fp32, CPU, contiguous; torch order ([out, in] for a weight; GGUF's ne is reversed)
  core::GgmlType type;
};

// The model's tensors in GGUF names, layouts and encodings for `type` (gpt_trunk_parameters: LoRA folded in,
// quantized layers dequantized). GPT-2 without biases gets zero biases (llama.cpp's gpt2 requires them).
std::vector<GgufTensor> gguf_model_tensors(Gpt& model, GgufFileType type);

struct GgufExportOptions {
  GgufFileType type = GgufFileType::kF32;
  std::string name = "troupe";  // general.name
};

struct GgufExportSummary {
  std::string architecture;
  size_t tensors = 0;
  uint64_t data_bytes = 0;             // encoded tensor bytes
  std::vector<std::string> fallbacks;  // q8_0 matrices written as F16 (rows not a multiple of 32)
};

// Writes `model` with `tokenizer` (tokenizer.ggml.* key/values; tokenizer.ggml.tokens must list vocab_size tokens)
// as a GGUF file at `path` (atomic). ConfigError for an architecture llama.cpp cannot run the same or a vocabulary
// of another size.
GgufExportSummary export_gguf(Gpt& model, const std::vector<core::GgufKeyValue>& tokenizer,
                              const GgufExportOptions& options, const std::filesystem::path& path);

}  // namespace troupe::models
