// Implementation of models/gpt_checkpoint.h.
#include "models/gpt_checkpoint.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "core/checkpoint_manager.h"
#include "core/errors.h"
#include "models/gpt_io.h"

namespace troupe::models {
namespace fs = std::filesystem;

namespace {}  // namespace

std::string gpt_config_json(const GptConfig& c) {
  nlohmann::ordered_json j{{"n_layer", c.n_layer},
                           {"n_head", c.n_head},
                           {"n_embd", c.n_embd},
                           {"block_size", c.block_size},
                           {"vocab_size", c.vocab_size},
                           {"dropout", c.dropout},
                           {"bias", c.bias},
                           {"tie_embeddings", c.tie_embeddings},
                           {"layer_norm_eps", c.layer_norm_eps}};
  if (c.llama()) {  // gpt2 records keep the first wave's shape
    j["arch"] = core::enum_name(c.arch);
    j["n_kv_head"] = c.n_kv_head;
    j["head_size"] = c.head_size;
    j["intermediate_size"] = c.intermediate_size;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = core::enum_name(c.rope_scaling);
    j["rope_factor"] = c.rope_factor;
    j["rope_original_context"] = c.rope_original_context;
    j["rope_low_freq_factor"] = c.rope_low_freq_factor;
    j["rope_high_freq_factor"] = c.rope_high_freq_factor;
    j["qkv_bias"] = c.qkv_bias;
    j["o_bias"] = c.o_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["sliding_window"] = c.sliding_window;
  }
  return j.dump();
}

namespace {

GptConfig parse_config_json(const std::string& text, const std::string& key) {
  try {
    const auto j = nlohmann::json::parse(text);
    GptConfig c;
    c.n_layer = j.at("n_layer").get<int64_t>();
    c.n_head = j.at("n_head").get<int64_t>();
    c.n_embd = j.at("n_embd").get<int64_t>();
    c.block_size = j.at("block_size").get<int64_t>();
    c.vocab_size = j.at("vocab_size").get<int64_t>();
    c.dropout = j.at("dropout").get<double>();
    c.bias = j.at("bias").get<bool>();
    c.tie_embeddings = j.at("tie_embeddings").get<bool>();
    c.layer_norm_eps = j.at("layer_norm_eps").get<double>();
    if (j.contains("arch")) {
      const auto arch = core::parse_enum<Arch>(j.at("arch").get<std::string>());
      const auto scaling = core::parse_enum<RopeScaling>(j.at("rope_scaling").get<std::string>());
      if (!arch || !scaling) throw ConfigError("unknown arch or rope_scaling");
      c.arch = *arch;
      c.rope_scaling = *scaling;
      c.n_kv_head = j.at("n_kv_head").get<int64_t>();
      c.head_size = j.at("head_size").get<int64_t>();
      c.intermediate_size = j.at("intermediate_size").get<int64_t>();
      c.rope_theta = j.at("rope_theta").get<double>();
      c.rope_factor = j.at("rope_factor").get<double>();
      c.rope_original_context = j.at("rope_original_context").get<int64_t>();
      c.rope_low_freq_factor = j.at("rope_low_freq_factor").get<double>();
      c.rope_high_freq_factor = j.at("rope_high_freq_factor").get<double>();
      c.qkv_bias = j.at("qkv_bias").get<bool>();
      c.o_bias = j.at("o_bias").get<bool>();
      c.mlp_bias = j.at("mlp_bias").get<bool>();
      c.sliding_window = j.at("sliding_window").get<int64_t>();
    }
    c.check();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw DataError("checkpoint extra state '" + key + "': not a GPT config: " + e.what());
  } catch (const ConfigError& e) {
    throw DataError("checkpoint extra state '" + key + "': " + e.what());
  }
}

}  // namespace

GptState gpt_state(Gpt& model) {
  GptState s;
  for (const auto& p : model->named_parameters()) s.tensors[p.key()] = p.value().detach().clone();
  for (const auto& b : model->named_buffers())
    if (b.value().defined()) s.tensors[b.key()] = b.value().detach().clone();
  s.config_json = gpt_config_json(model->config());
  s.value_head = model->heads().value;
  s.reward_head = model->heads().reward;
  if (model->quant_config().enabled()) s.quantization = model->quant_config().to_json();
  for (auto& [name, layer] : model->linear_layers()) {
    if (!layer->has_lora()) continue;
    if (layer->merged()) throw Error("gpt_state: LoRA adapter of " + name + " is merged; unmerge before saving");
    s.lora_alpha = layer->lora_alpha();
  }
  return s;
}

void add_gpt_state_to_checkpoint(core::CheckpointState& state, const std::string& group, const GptState& gpt) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : gpt.tensors) tensors[name] = t.detach().cpu();  // gpt_state copied already
  state.tensor_groups[group] = std::move(tensors);
  state.extra[group + ".config"] = gpt.config_json;
  state.extra[group + ".heads"] = std::vector<int64_t>{gpt.value_head ? 1 : 0, gpt.reward_head ? 1 : 0};
  state.extra[group + ".lora_alpha"] = gpt.lora_alpha;
  if (!gpt.quantization.empty()) state.extra[group + ".quantization"] = gpt.quantization;
}

GptState gpt_state_from_checkpoint(const core::CheckpointState& state, const std::string& group) {
  const auto tensors = state.tensor_groups.find(group);
  if (tensors == state.tensor_groups.end() || state.extra.count(group + ".config") == 0) {
    throw DataError("checkpoint step " + std::to_string(state.step) + " holds no GPT named '" + group +
                    "' (expected tensor group '" + group + "' and extra state '" + group + ".config')");
  }
  GptState s;
  s.tensors = tensors->second;
  s.config_json = state.get<std::string>(group + ".config");
  const auto heads = state.get_or<std::vector<int64_t>>(group + ".heads", {0, 0});
  s.value_head = heads.size() > 0 && heads[0] != 0;
  s.reward_head = heads.size() > 1 && heads[1] != 0;
  s.lora_alpha = state.get_or<double>(group + ".lora_alpha", 0.0);
  s.quantization = state.get_or<std::string>(group + ".quantization", std::string());
  return s;
}

void load_gpt_state(Gpt& model, const GptState& gpt) {
  core::CheckpointState holder;
  holder.tensor_groups["model"] = gpt.tensors;
  holder.load_module("model", *model);  // checks names and shapes, copies onto the model's device
  refresh_quantized(model);
}

void add_gpt_to_checkpoint(core::CheckpointState& state, const std::string& group, Gpt& model) {
  add_gpt_state_to_checkpoint(state, group, gpt_state(model));
}

Gpt gpt_from_checkpoint(const core::CheckpointState& state, const std::string& group) {
  const auto tensors = state.tensor_groups.find(group);
  if (tensors == state.tensor_groups.end() || state.extra.count(group + ".config") == 0) {
    throw DataError("checkpoint step " + std::to_string(state.step) + " holds no GPT named '" + group +
                    "' (expected tensor group '" + group + "' and extra state '" + group + ".config')");
  }
  const GptConfig config = parse_config_json(state.get<std::string>(group + ".config"), group + ".config");
  const auto heads_flags = state.get_or<std::vector<int64_t>>(group + ".heads", {0, 0});
  GptHeads heads;
  heads.value = heads_flags.size() > 0 && heads_flags[0] != 0;
  heads.reward = heads_flags.size() > 1 && heads_flags[1] != 0;
  Gpt model(config, heads);
  // Adapters: every "<layer>.lora_A" names an adapted layer; its rows are the rank.
  LoraConfig lora;
  lora.targets.clear();
  for (const auto& [name, t] : tensors->second) {
    if (!name.ends_with(".lora_A")) continue;
    lora.targets.push_back(name.substr(0, name.size() - 7));
    lora.rank = t.size(0);
  }
  if (!lora.targets.empty()) {
    lora.alpha = state.get<double>(group + ".lora_alpha");
    apply_lora(model, lora, /*train_heads=*/true);
  }
  // A quantized model: the same layers quantized (from the random weights: only the structure matters), then the
  // stored codes and scales loaded over them.
  const auto quantization = state.get_or<std::string>(group + ".quantization", std::string());
  if (!quantization.empty()) {
    try {
      quantize_gpt(model, GptQuantConfig::from_json(quantization));
    } catch (const DataError& e) {
      throw DataError("checkpoint extra state '" + group + ".quantization': " + e.what());
    }
  }
  state.load_module(group, *model);
  refresh_quantized(model);
  return model;
}

bool is_troupe_checkpoint_path(const fs::path& path) {
  return fs::exists(path / "manifest.bin") || fs::exists(path / "latest") || fs::is_directory(path / "checkpoints");
}

core::CheckpointState load_checkpoint_at(const fs::path& path) {
  core::CheckpointOptions options;
  if (fs::exists(path / "manifest.bin")) {
    options.root = path.parent_path();
    return core::CheckpointManager(options).load(path);
  }
  options.root = fs::is_directory(path / "checkpoints") ? path / "checkpoints" : path;
  std::optional<core::CheckpointState> state = core::CheckpointManager(options).load_latest();
  if (!state) {
    throw IoError(path.string() +
                  ": no complete checkpoint (expected a run directory with checkpoints/, a "
                  "checkpoint root with `latest`, or a step_<N> directory with manifest.bin)");
  }
  return std::move(*state);
}

namespace {
// A quantized model cannot hand its trunk to a fresh module (its weights are codes): it is used as it is, adapters
// unmerged, which is only possible when it already has the heads asked for.
Gpt quantized_as_is(Gpt stored, const GptHeads& heads, const fs::path& path) {
  if (heads.value != stored->heads().value || heads.reward != stored->heads().reward) {
    throw ConfigError("'" + path.string() + "' holds a " + quant_scheme_name(stored->quant_config().options.scheme) +
                      "-quantized model, which cannot take fresh value or reward heads; start from the unquantized "
                      "model and quantize in the config instead");
  }
  return stored;
}
}  // namespace

Gpt load_pretrained_gpt(const fs::path& path, GptHeads heads) {
  if (is_quantized_gpt_dir(path)) return quantized_as_is(load_quantized_gpt(path), heads, path);
  if (is_hf_model_dir(path)) return load_hf_model(path, heads);
  if (!fs::is_directory(path) || !is_troupe_checkpoint_path(path)) {
    throw ConfigError("'" + path.string() +
                      "': expected a Hugging Face GPT-2, Llama, Qwen2 or Mistral directory (config.json + "
                      "model.safetensors) or a Troupe run or checkpoint directory (sharded weights: "
                      "model.safetensors.index.json in place of model.safetensors)");
  }
  Gpt stored = gpt_from_checkpoint(load_checkpoint_at(path), "model");
  const GptQuantConfig& q = stored->quant_config();
  if (q.enabled() && !q.fake) return quantized_as_is(stored, heads, path);
  Gpt model(stored->config(), heads);
  load_gpt_trunk_parameters(model, gpt_trunk_parameters(stored), path.string());
  if (q.fake) enable_fake_quant(model, q.options.scheme, q.options.group, q.targets);  // a QAT model stays one
  return model;
}

}  // namespace troupe::models
