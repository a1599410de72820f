// Implementation of models/gpt_io.h.
#include "models/gpt_io.h"

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "models/gpt_checkpoint.h"
#include "models/hf_gpt2.h"
#include "models/hf_json.h"
#include "models/safetensors_shards.h"

namespace troupe::models {

namespace {
bool is_trunk_name(const std::string& name) {
  return (name.rfind("transformer.", 0) == 0 || name.rfind("model.", 0) == 0 || name.rfind("lm_head.", 0) == 0) &&
         name.find(".lora_") == std::string::npos;
}
}  // namespace

NamedTensors gpt_trunk_parameters(Gpt& model) {
  std::map<std::string, torch::Tensor> folded;
  torch::NoGradGuard no_grad_all;
  for (auto& [name, layer] : model->linear_layers()) {
    if (layer->quantized()) {  // the dequantized weight, the adapter added in fp32 (a QLoRA model merged)
      torch::Tensor w = layer->quantized_weight().dequantize();
      if (layer->has_lora())
        w += torch::matmul(layer->lora_B, layer->lora_A).to(w.dtype()) *
             (layer->lora_alpha() / static_cast<double>(layer->lora_A.size(0)));
      folded[name + ".weight"] = w;
      continue;
    }
    if (layer->has_lora() && !layer->merged()) {
      torch::NoGradGuard no_grad;
      layer->merge_lora();
      folded[name + ".weight"] = layer->weight.detach().clone();
      layer->unmerge_lora();
    }
  }
  if (model->embedding_quantized())
    folded[model->embedding_name() + ".weight"] = model->quantized_embedding().dequantize();
  NamedTensors out;
  for (const auto& item : model->named_parameters(true)) {
    if (!is_trunk_name(item.key())) continue;
    const auto it = folded.find(item.key());
    out.emplace_back(item.key(), it != folded.end() ? it->second : item.value().detach());
  }
  return out;
}

void load_gpt_trunk_parameters(Gpt& model, const NamedTensors& params, const std::string& source) {
  auto named = model->named_parameters(true);
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : params) {
    torch::Tensor* target = named.find(name);
    if (target == nullptr || !is_trunk_name(name)) throw DataError(source + ": unexpected tensor '" + name + "'");
    if (target->sizes() != tensor.sizes()) {
      throw DataError(source + ": tensor '" + name + "' has shape " + c10::str(tensor.sizes()) + ", the model needs " +
                      c10::str(target->sizes()));
    }
    target->copy_(tensor);
    seen.insert(name);
  }
  for (const auto& item : named) {
    if (is_trunk_name(item.key()) && seen.count(item.key()) == 0) {
      throw DataError(source + ": missing tensor '" + item.key() + "'");
    }
  }
}

Gpt load_hf_gpt2(const std::filesystem::path& dir, GptHeads heads) {
  HfGpt2Checkpoint checkpoint = import_hf_gpt2_dir(dir);
  Gpt model(checkpoint.config, heads);
  load_gpt_trunk_parameters(model, checkpoint.params, dir.string());
  return model;
}

void save_hf_gpt2(const std::filesystem::path& dir, Gpt& model) {
  export_hf_gpt2_dir(dir, gpt_trunk_parameters(model), model->config());
}

bool is_hf_model_dir(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "config.json") && has_safetensors_weights(dir);
}

Gpt load_hf_model(const std::filesystem::path& dir, GptHeads heads) {
  const std::filesystem::path path = dir / "config.json";
  const nlohmann::json j = hf_json::read_object(path, "a Hugging Face model config");
  if (hf_json::has(j, "model_type")) {
    const std::string type = hf_json::get<std::string>(path, j, "model_type", nullptr, "a Hugging Face model");
    if (type == "gpt2") return load_hf_gpt2(dir, heads);
    if (hf_llama_type(type)) return load_hf_llama(dir, heads);
    hf_json::bad_key(path, "model_type",
                     "unsupported model type '" + type + "' (Troupe reads gpt2, llama, qwen2, mistral)");
  }
  const bool llama_family = hf_json::has(j, "architectures") && j["architectures"].is_array() &&
                            j["architectures"].size() == 1 && j["architectures"][0].is_string() &&
                            j["architectures"][0] != "GPT2LMHeadModel";
  return llama_family ? load_hf_llama(dir, heads) : load_hf_gpt2(dir, heads);
}

void save_hf_model(const std::filesystem::path& dir, Gpt& model, const HfExportOptions& options) {
  if (model->config().llama()) {
    save_hf_llama(dir, model, options);
  } else {
    save_hf_gpt2(dir, model);
  }
}

// ---- quantized model directories ---------------------------------------------------------------------------------

namespace {
constexpr const char* kQuantFormat = "troupe-quantized";
}  // namespace

void save_quantized_gpt(const std::filesystem::path& dir, Gpt& model, const std::string& source) {
  const GptQuantConfig& q = model->quant_config();
  if (!q.enabled() || q.fake) throw Error("save_quantized_gpt: the model is not quantized");
  const GptState state = gpt_state(model);
  NamedTensors tensors;
  for (const auto& [name, t] : state.tensors) {
    if (t.numel() == 0) continue;  // the released fp32 weights of quantized layers
    tensors.emplace_back(name, t.cpu());
  }
  if (q.options.scheme == QuantScheme::kNf4) {
    const auto& nf4 = nf4_code_book();
    tensors.emplace_back("quantization.nf4_code_book", torch::tensor(std::vector<float>(nf4.begin(), nf4.end())));
    if (q.options.double_quant) {
      const auto& dyn = dynamic_code_book();
      tensors.emplace_back("quantization.dynamic_code_book", torch::tensor(std::vector<float>(dyn.begin(), dyn.end())));
    }
  }
  const nlohmann::json heads{{"value", state.value_head}, {"reward", state.reward_head}};
  std::map<std::string, std::string> meta{{"format", kQuantFormat},
                                          {"troupe.config", state.config_json},
                                          {"troupe.heads", heads.dump()},
                                          {"troupe.quantization", state.quantization},
                                          {"troupe.lora_alpha", std::to_string(state.lora_alpha)}};
  std::filesystem::create_directories(dir);
  save_safetensors(dir / "model.safetensors", tensors, meta);
  nlohmann::ordered_json info = nlohmann::ordered_json::parse(state.quantization);
  info["format"] = kQuantFormat;
  info["config"] = nlohmann::json::parse(state.config_json);
  info["weight_bytes"] = gpt_weight_bytes(model);
  info["fp32_weight_bytes"] = model->config().parameter_count() * 4;
  if (!source.empty()) info["source"] = source;
  const auto tmp = dir / "quantization.json.tmp";
  {
    std::ofstream out(tmp);
    out << info.dump(2) << "\n";
    if (!out) throw IoError(tmp.string() + ": cannot write");
  }
  std::filesystem::rename(tmp, dir / "quantization.json");
}

bool is_quantized_gpt_dir(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "quantization.json") && std::filesystem::exists(dir / "model.safetensors");
}

Gpt load_quantized_gpt(const std::filesystem::path& dir) {
  const auto file = dir / "model.safetensors";
  const SafetensorsFile f = load_safetensors(file);
  auto meta = [&](const std::string& key) {
    const auto it = f.metadata.find(key);
    if (it == f.metadata.end()) throw DataError(file.string() + ": metadata has no '" + key + "'");
    return it->second;
  };
  if (meta("format") != kQuantFormat)
    throw DataError(file.string() + ": metadata format is '" + meta("format") + "', expected " + kQuantFormat);
  core::CheckpointState state;
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind("quantization.", 0) == 0) continue;
    tensors[name] = t;
  }
  state.extra["model.config"] = meta("troupe.config");
  try {
    const auto heads = nlohmann::json::parse(meta("troupe.heads"));
    state.extra["model.heads"] =
        std::vector<int64_t>{heads.at("value").get<bool>() ? 1 : 0, heads.at("reward").get<bool>() ? 1 : 0};
    state.extra["model.lora_alpha"] = std::stod(meta("troupe.lora_alpha"));
  } catch (const std::exception& e) {
    throw DataError(file.string() + ": bad heads or lora_alpha metadata: " + e.what());
  }
  state.extra["model.quantization"] = meta("troupe.quantization");
  // The fp32 weights of quantized layers are released (empty) in the model: give them back as empty tensors so the
  // load matches every name.
  std::vector<std::string> released;
  for (const auto& [name, t] : tensors) {
    if (name.size() > 8 && name.compare(name.size() - 8, 8, ".qweight") == 0)
      released.push_back(name.substr(0, name.size() - 8) + ".weight");
  }
  for (const auto& name : released) tensors.emplace(name, torch::empty({0}));
  state.tensor_groups["model"] = tensors;
  try {
    return gpt_from_checkpoint(state, "model");
  } catch (const DataError& e) {
    throw DataError(file.string() + ": " + e.what());
  }
}

}  // namespace troupe::models
