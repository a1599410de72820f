// Implementation of models/gguf_export.h.
#include "models/gguf_export.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "core/errors.h"
#include "models/gpt_io.h"

namespace troupe::models {

namespace {

using core::GgmlType;

// general.file_type (gguf-py LlamaFileType).
uint32_t llama_file_type(GgufFileType type) {
  switch (type) {
    case GgufFileType::kF32: return 0;    // ALL_F32
    case GgufFileType::kF16: return 1;    // MOSTLY_F16
    case GgufFileType::kQ8_0: return 7;   // MOSTLY_Q8_0
    case GgufFileType::kBF16: return 32;  // MOSTLY_BF16
  }
  return 0;
}

GgmlType matrix_type(GgufFileType type) {
  switch (type) {
    case GgufFileType::kF32: return GgmlType::kF32;
    case GgufFileType::kF16: return GgmlType::kF16;
    case GgufFileType::kBF16: return GgmlType::kBF16;
    case GgufFileType::kQ8_0: return GgmlType::kQ8_0;
  }
  return GgmlType::kF32;
}

// convert_hf_to_gguf's LlamaModel.permute: rows of each head from rotate-half order (x_i pairs with x_{i+d/2}) to
// ggml's interleaved order (x_{2i} pairs with x_{2i+1}). w: [heads * head_dim, ...] (a weight or a bias).
torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t heads) {
  std::vector<int64_t> shape = {heads, 2, w.size(0) / heads / 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

// The llama3 rope_freqs factors [head_dim / 2] exactly as LlamaModel.generate_extra_tensors computes them (fp32
// torch ops in the same order, so the values agree bit for bit with the converter's).
torch::Tensor llama3_rope_factors(const GptConfig& c) {
  const int64_t dim = c.head_dim();
  const torch::Tensor freqs =
      1.0 / torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kFloat32) / static_cast<double>(dim));
  const double old_context = static_cast<double>(c.rope_original_context > 0 ? c.rope_original_context : c.block_size);
  const double low_wavelen = old_context / c.rope_low_freq_factor, high_wavelen = old_context / c.rope_high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < freqs.size(0); ++i) {
    const torch::Tensor wavelen = (2 * M_PI) / freqs[i];
    if (wavelen.lt(high_wavelen).item<bool>()) {
      factors.push_back(1.0F);
    } else if (wavelen.gt(low_wavelen).item<bool>()) {
      factors.push_back(static_cast<float>(c.rope_factor));
    } else {
      const torch::Tensor smooth =
          (old_context / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
      factors.push_back((1.0 / ((1 - smooth) / c.rope_factor + smooth)).item<float>());
    }
  }
  return torch::tensor(factors, torch::kFloat32);
}

// Troupe parameter name -> GGUF name (empty when the name is not part of the exported model).
std::string gguf_tensor_name(const std::string& name) {
  static const std::map<std::string, std::string> kGlobal = {{"transformer.wte.weight", "token_embd.weight"},
                                                             {"transformer.wpe.weight", "position_embd.weight"},
                                                             {"transformer.ln_f.weight", "output_norm.weight"},
                                                             {"transformer.ln_f.bias", "output_norm.bias"},
                                                             {"model.embed_tokens.weight", "token_embd.weight"},
                                                             {"model.norm.weight", "output_norm.weight"},
                                                             {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> kLayer = {{"ln_1", "attn_norm"},
                                                            {"attn.c_attn", "attn_qkv"},
                                                            {"attn.c_proj", "attn_output"},
                                                            {"ln_2", "ffn_norm"},
                                                            {"mlp.c_fc", "ffn_up"},
                                                            {"mlp.c_proj", "ffn_down"},
                                                            {"input_layernorm", "attn_norm"},
                                                            {"self_attn.q_proj", "attn_q"},
                                                            {"self_attn.k_proj", "attn_k"},
                                                            {"self_attn.v_proj", "attn_v"},
                                                            {"self_attn.o_proj", "attn_output"},
                                                            {"post_attention_layernorm", "ffn_norm"},
                                                            {"mlp.gate_proj", "ffn_gate"},
                                                            {"mlp.up_proj", "ffn_up"},
                                                            {"mlp.down_proj", "ffn_down"}};
  if (const auto it = kGlobal.find(name); it != kGlobal.end()) return it->second;
  for (const std::string prefix : {"transformer.h.", "model.layers."}) {
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dot = name.find('.', prefix.size());
    const size_t last = name.rfind('.');
    if (dot == std::string::npos || last <= dot) return "";
    const auto it = kLayer.find(name.substr(dot + 1, last - dot - 1));
    if (it == kLayer.end()) return "";
    return "blk." + name.substr(prefix.size(), dot - prefix.size()) + "." + it->second + name.substr(last);
  }
  return "";
}

// convert_hf_to_gguf's per-tensor choice: 1-D tensors and the position embedding F32, matrices the file type, and
// F16 for a q8_0 matrix whose rows do not split into blocks of 32.
GgmlType tensor_type(const std::string& gguf_name, const torch::Tensor& t, GgufFileType type) {
  if (t.dim() <= 1 || gguf_name == "position_embd.weight") return GgmlType::kF32;
  const GgmlType wanted = matrix_type(type);
  if (wanted == GgmlType::kQ8_0 && t.size(-1) % core::kQ8BlockSize != 0) return GgmlType::kF16;
  return wanted;
}

const core::GgufKeyValue* find_key(const std::vector<core::GgufKeyValue>& kvs, const std::string& key) {
  for (const auto& kv : kvs) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

}  // namespace

GgufFileType parse_gguf_file_type(const std::string& name) {
  for (GgufFileType t : {GgufFileType::kF32, GgufFileType::kF16, GgufFileType::kBF16, GgufFileType::kQ8_0}) {
    if (name == gguf_file_type_name(t)) return t;
  }
  throw ConfigError("gguf: unknown type '" + name + "'; expected f32, f16, bf16 or q8_0");
}

const char* gguf_file_type_name(GgufFileType type) {
  switch (type) {
    case GgufFileType::kF32: return "f32";
    case GgufFileType::kF16: return "f16";
    case GgufFileType::kBF16: return "bf16";
    case GgufFileType::kQ8_0: return "q8_0";
  }
  return "?";
}

std::string gguf_architecture(const GptConfig& c) {
  if (!c.llama()) return "gpt2";
  if (c.rope_scaling == RopeScaling::kDynamic) {
    throw ConfigError(
        "gguf: model.rope_scaling dynamic (NTK) has no llama.cpp equivalent for llama models (the converter drops "
        "it, so the file would compute other logits); use none, linear or llama3");
  }
  if (c.sliding_window > 0) {
    throw ConfigError("gguf: model.sliding_window " + std::to_string(c.sliding_window) +
                      ": llama.cpp's llama architecture attends the whole context; export a model without one");
  }
  const bool qwen2 = c.qkv_bias && !c.o_bias && !c.mlp_bias && c.n_head * c.head_dim() == c.n_embd;
  return qwen2 ? "qwen2" : "llama";
}

std::vector<core::GgufKeyValue> gguf_model_metadata(const GptConfig& c, GgufFileType type, const std::string& name) {
  const std::string arch = gguf_architecture(c);
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  const auto f32 = [](double v) { return static_cast<float>(v); };
  std::vector<core::GgufKeyValue> kv = {
      {"general.architecture", arch},
      {"general.name", name},
      {"general.file_type", llama_file_type(type)},
      {"general.quantization_version", uint32_t{2}},  // GGML_QUANT_VERSION, as gguf-py writes it
      {arch + ".context_length", u32(c.block_size)},
      {arch + ".embedding_length", u32(c.n_embd)},
      {arch + ".block_count", u32(c.n_layer)},
      {arch + ".feed_forward_length", u32(c.mlp_width())},
      {arch + ".attention.head_count", u32(c.n_head)},
      {arch + ".attention.head_count_kv", u32(c.kv_heads())},
      {arch + ".vocab_size", u32(c.vocab_size)}};
  if (!c.llama()) {
    kv.push_back({arch + ".attention.layer_norm_epsilon", f32(c.layer_norm_eps)});
    return kv;
  }
  kv.push_back({arch + ".rope.freq_base", f32(c.rope_theta)});
  kv.push_back({arch + ".attention.layer_norm_rms_epsilon", f32(c.layer_norm_eps)});
  kv.push_back({arch + ".rope.dimension_count", u32(c.head_dim())});
  if (c.head_dim() * c.n_head != c.n_embd) {
    kv.push_back({arch + ".attention.key_length", u32(c.head_dim())});
    kv.push_back({arch + ".attention.value_length", u32(c.head_dim())});
  }
  if (c.rope_scaling == RopeScaling::kLinear) {
    kv.push_back({arch + ".rope.scaling.type", std::string("linear")});
    kv.push_back({arch + ".rope.scaling.factor", f32(c.rope_factor)});
  }
  return kv;
}

std::vector<GgufTensor> gguf_model_tensors(Gpt& model, GgufFileType type) {
  const GptConfig& c = model->config();
  const std::string arch = gguf_architecture(c);
  torch::NoGradGuard no_grad;
  std::vector<GgufTensor> out;
  const auto add = [&](const std::string& gguf_name, const std::string& source, torch::Tensor t) {
    t = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    out.push_back({gguf_name, source, t, tensor_type(gguf_name, t, type)});
  };
  for (const auto& [name, tensor] : gpt_trunk_parameters(model)) {
    const std::string gguf_name = gguf_tensor_name(name);
    if (gguf_name.empty()) throw ConfigError("gguf: no GGUF name for parameter '" + name + "'");
    torch::Tensor t = tensor;
    if (arch == "llama" && name.find(".self_attn.q_proj.") != std::string::npos) t = permute_rope_rows(t, c.n_head);
    if (arch == "llama" && name.find(".self_attn.k_proj.") != std::string::npos) t = permute_rope_rows(t, c.kv_heads());
    add(gguf_name, name, t);
  }
  if (arch == "gpt2" && !c.bias) {  // llama.cpp's gpt2 graph requires every bias: zeros compute the same
    const auto zeros = [&](const std::string& n, int64_t size) { add(n, "", torch::zeros({size})); };
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      zeros(b + "attn_norm.bias", c.n_embd);
      zeros(b + "attn_qkv.bias", 3 * c.n_embd);
      zeros(b + "attn_output.bias", c.n_embd);
      zeros(b + "ffn_norm.bias", c.n_embd);
      zeros(b + "ffn_up.bias", c.mlp_width());
      zeros(b + "ffn_down.bias", c.n_embd);
    }
    zeros("output_norm.bias", c.n_embd);
  }
  if (c.llama() && c.rope_scaling == RopeScaling::kLlama3) add("rope_freqs.weight", "", llama3_rope_factors(c));
  return out;
}

GgufExportSummary export_gguf(Gpt& model, const std::vector<core::GgufKeyValue>& tokenizer,
                              const GgufExportOptions& options, const std::filesystem::path& path) {
  const GptConfig& c = model->config();
  const core::GgufKeyValue* tokens = find_key(tokenizer, "tokenizer.ggml.tokens");
  if (tokens == nullptr || find_key(tokenizer, "tokenizer.ggml.model") == nullptr) {
    throw ConfigError("gguf: the tokenizer section needs tokenizer.ggml.model and tokenizer.ggml.tokens");
  }
  const auto* list = std::get_if<std::vector<std::string>>(&tokens->value);
  if (list == nullptr || static_cast<int64_t>(list->size()) != c.vocab_size) {
    throw ConfigError("gguf: the tokenizer lists " + std::to_string(list ? list->size() : 0) +
                      " tokens, the model's vocab_size is " + std::to_string(c.vocab_size));
  }
  core::GgufWriter writer;
  writer.add_all(gguf_model_metadata(c, options.type, options.name));
  writer.add_all(tokenizer);
  GgufExportSummary summary;
  summary.architecture = gguf_architecture(c);
  for (const auto& t : gguf_model_tensors(model, options.type)) {
    std::vector<int64_t> shape(t.data.sizes().begin(), t.data.sizes().end());
    writer.add_tensor(t.name, shape, t.type, t.data.data_ptr<float>());
    if (options.type == GgufFileType::kQ8_0 && t.type == GgmlType::kF16) summary.fallbacks.push_back(t.name);
  }
  writer.write(path);
  summary.tensors = writer.tensor_count();
  summary.data_bytes = writer.data_bytes();
  return summary;
}

}  // namespace troupe::models
