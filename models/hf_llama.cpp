// Implementation of models/hf_llama.h: LlamaConfig / Qwen2Config / MistralConfig as config.json, and the tensors of a
// (sharded) safetensors directory checked by name and shape against the model they load into.
#include "models/hf_llama.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/run_dir.h"
#include "models/gpt_io.h"
#include "models/hf_json.h"
#include "models/safetensors_shards.h"

namespace troupe::models {
namespace fs = std::filesystem;

namespace hfl {  // helpers, named (not anonymous) so that unity builds cannot mix them up

using hf_json::bad_key;
using hf_json::has;
using json = nlohmann::json;

// The values transformers' config classes give keys config.json leaves out.
struct ClassDefaults {
  int64_t max_position_embeddings;
  int64_t num_key_value_heads;  // 0 = num_attention_heads
};

ClassDefaults class_defaults(HfLlamaType type) {
  switch (type) {
    case HfLlamaType::kQwen2: return {32768, 32};
    case HfLlamaType::kMistral: return {131072, 8};
    case HfLlamaType::kLlama: break;
  }
  return {2048, 0};
}

// Reads keys of one config.json (or of one object inside it, `prefix` naming it in errors).
struct Keys {
  const fs::path& path;
  const json& j;
  std::string family;
  std::string prefix;

  std::string shown(const std::string& key) const { return prefix.empty() ? key : prefix + "." + key; }
  template <class T>
  T required(const std::string& key) const {
    return hf_json::get<T>(path, j, key, nullptr, family, shown(key));
  }
  template <class T>
  T optional(const std::string& key, T fallback) const {
    return hf_json::get<T>(path, j, key, &fallback, family, shown(key));
  }
};

HfLlamaType read_type(const fs::path& path, const json& j) {
  std::optional<HfLlamaType> type;
  if (has(j, "model_type")) {
    const std::string name = hf_json::get<std::string>(path, j, "model_type", nullptr, "a Llama-family model");
    type = hf_llama_type(name);
    if (!type) bad_key(path, "model_type", "'" + name + "' is not llama, qwen2 or mistral");
  }
  if (!has(j, "architectures")) {
    if (!type) bad_key(path, "model_type", "missing (and no architectures to tell the class)");
    return *type;
  }
  const json& archs = j["architectures"];
  if (!archs.is_array() || archs.size() != 1 || !archs[0].is_string()) {
    bad_key(path, "architectures", "expected one class name, got " + archs.dump());
  }
  for (HfLlamaType t : {HfLlamaType::kLlama, HfLlamaType::kQwen2, HfLlamaType::kMistral}) {
    if (archs[0] == hf_architecture_name(t) && (!type || *type == t)) return t;
  }
  bad_key(path, "architectures",
          archs.dump() + " is not " +
              (type ? "[\"" + hf_architecture_name(*type) + "\"] (model_type " + hf_model_type_name(*type) + ")"
                    : std::string("LlamaForCausalLM, Qwen2ForCausalLM or MistralForCausalLM")));
}

// The RoPE settings as transformers 5 resolves them: a non-empty legacy rope_scaling wins over rope_parameters;
// rope_theta inside the dict wins over the top-level key; llama3's original context comes from a top-level
// original_max_position_embeddings, else the dict, else max_position_embeddings. Sets block_size too.
void read_rope(const fs::path& path, const json& j, int64_t max_positions, const std::string& family, GptConfig& c) {
  std::string key = "rope_parameters";
  json rope = json::object();
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null() && !j["rope_scaling"].empty()) {
    key = "rope_scaling";
    rope = j[key];
  } else if (has(j, "rope_parameters")) {
    rope = j["rope_parameters"];
  }
  if (!rope.is_object()) bad_key(path, key, "expected an object, got " + rope.dump());
  if (rope.contains("full_attention") || rope.contains("sliding_attention")) {
    bad_key(path, key, "RoPE parameters per layer type are not supported (Troupe has one RoPE for every layer)");
  }
  const Keys top{path, j, family, ""}, r{path, rope, family, key};
  c.rope_theta = r.optional<double>("rope_theta", top.optional<double>("rope_theta", 10000.0));
  for (const Keys* k : {&r, &top}) {
    if (k->optional<double>("partial_rotary_factor", 1.0) != 1.0)
      bad_key(path, k->shown("partial_rotary_factor"), "partial rotary embeddings are not supported (expected 1.0)");
  }
  const std::string type = r.optional<std::string>("rope_type", r.optional<std::string>("type", "default"));
  c.block_size = max_positions;
  if (type == "default") return;
  c.rope_factor = r.required<double>("factor");
  if (type == "linear") {
    c.rope_scaling = RopeScaling::kLinear;
  } else if (type == "dynamic") {
    c.rope_scaling = RopeScaling::kDynamic;
    c.rope_original_context = max_positions;
    c.block_size = std::max(max_positions, static_cast<int64_t>(std::floor(max_positions * c.rope_factor)));
  } else if (type == "llama3") {
    c.rope_scaling = RopeScaling::kLlama3;
    c.rope_low_freq_factor = r.required<double>("low_freq_factor");
    c.rope_high_freq_factor = r.required<double>("high_freq_factor");
    c.rope_original_context = top.optional<int64_t>(
        "original_max_position_embeddings", r.optional<int64_t>("original_max_position_embeddings", max_positions));
  } else {
    bad_key(path, key + ".rope_type",
            "unsupported RoPE type '" + type + "' (Troupe implements default, linear, dynamic and llama3)");
  }
}

// The sliding-window key: absent = the class default, null = off.
int64_t window_key(const fs::path& path, const json& j, int64_t absent) {
  if (!j.contains("sliding_window")) return absent;
  if (j["sliding_window"].is_null()) return 0;
  const int64_t w = hf_json::get<int64_t>(path, j, "sliding_window", nullptr, "a sliding window");
  if (w <= 0) bad_key(path, "sliding_window", "expected a positive integer or null, got " + std::to_string(w));
  return w;
}

// Qwen2: layers slide when use_sliding_window and their layer_types entry (default: index >= max_window_layers) says
// so. Troupe has one window for all layers: all or none must slide.
int64_t qwen2_window(const fs::path& path, const json& j, int64_t n_layer) {
  const Keys k{path, j, "Qwen2", ""};
  const int64_t window = k.optional<bool>("use_sliding_window", false) ? window_key(path, j, 4096) : 0;
  const int64_t max_window_layers = k.optional<int64_t>("max_window_layers", 28);
  int64_t sliding = 0;
  if (has(j, "layer_types")) {
    const json& types = j["layer_types"];
    if (!types.is_array() || static_cast<int64_t>(types.size()) != n_layer)
      bad_key(path, "layer_types", "expected one entry per layer (" + std::to_string(n_layer) + ")");
    for (const json& t : types) {
      if (t != "full_attention" && t != "sliding_attention")
        bad_key(path, "layer_types", "unsupported layer type " + t.dump());
      sliding += t == "sliding_attention" ? 1 : 0;
    }
  } else {
    sliding = std::max<int64_t>(0, n_layer - max_window_layers);
  }
  if (window == 0 || sliding == 0) return 0;
  if (sliding != n_layer) {
    bad_key(path, has(j, "layer_types") ? "layer_types" : "max_window_layers",
            std::to_string(sliding) + " of " + std::to_string(n_layer) +
                " layers use the sliding window; Troupe has one window for every layer (all or none)");
  }
  return window;
}

void read_sizes(const Keys& k, HfLlamaType type, GptConfig& c) {
  c.n_embd = k.required<int64_t>("hidden_size");
  c.n_layer = k.required<int64_t>("num_hidden_layers");
  c.n_head = k.required<int64_t>("num_attention_heads");
  c.vocab_size = k.required<int64_t>("vocab_size");
  c.intermediate_size = k.required<int64_t>("intermediate_size");
  if (c.n_head <= 0) bad_key(k.path, "num_attention_heads", "expected a positive integer");
  const int64_t default_kv = class_defaults(type).num_key_value_heads;
  const int64_t kv = k.optional<int64_t>("num_key_value_heads", default_kv > 0 ? default_kv : c.n_head);
  if (kv <= 0 || c.n_head % kv != 0)
    bad_key(k.path, "num_key_value_heads", std::to_string(kv) + " does not divide num_attention_heads");
  c.n_kv_head = kv == c.n_head ? 0 : kv;
  const bool even = c.n_embd % c.n_head == 0;
  if (type == HfLlamaType::kLlama && !even)
    bad_key(k.path, "hidden_size", "LlamaConfig requires a multiple of num_attention_heads");
  if (!has(k.j, "head_dim") && !even)
    bad_key(k.path, "hidden_size", "not a multiple of num_attention_heads, and no head_dim is given");
  const int64_t head_dim = k.optional<int64_t>("head_dim", even ? c.n_embd / c.n_head : 0);
  if (head_dim <= 0 || head_dim % 2 != 0)
    bad_key(k.path, "head_dim", std::to_string(head_dim) + " is not a positive even number (RoPE rotates pairs)");
  c.head_size = even && head_dim == c.n_embd / c.n_head ? 0 : head_dim;
}

void read_options(const Keys& k, HfLlamaType type, GptConfig& c) {
  const std::string act = k.optional<std::string>("hidden_act", "silu");
  if (act != "silu" && act != "swish")
    bad_key(k.path, "hidden_act", "unsupported activation '" + act + "' (Troupe's SwiGLU uses silu)");
  if (k.optional<double>("attention_dropout", 0.0) != 0.0)
    bad_key(k.path, "attention_dropout", "must be 0 (Troupe's dropout covers embeddings and residuals too)");
  if (has(k.j, "quantization_config"))
    bad_key(k.path, "quantization_config", "quantized Hugging Face checkpoints are not supported");
  c.layer_norm_eps = k.optional<double>("rms_norm_eps", 1e-6);
  c.tie_embeddings = k.optional<bool>("tie_word_embeddings", false);
  switch (type) {
    case HfLlamaType::kLlama:
      c.qkv_bias = c.o_bias = k.optional<bool>("attention_bias", false);
      c.mlp_bias = k.optional<bool>("mlp_bias", false);
      break;
    case HfLlamaType::kQwen2:
      c.qkv_bias = true;
      c.sliding_window = qwen2_window(k.path, k.j, c.n_layer);
      break;
    case HfLlamaType::kMistral: c.sliding_window = window_key(k.path, k.j, 4096); break;
  }
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: throw Error(std::string("save_hf_llama: cannot export weights of dtype ") + c10::toString(t));
  }
}

void check_representable(const GptConfig& c, HfLlamaType type) {
  const std::string what = "cannot write this model as " + hf_model_type_name(type) + ": ";
  if (!c.llama()) throw ConfigError(what + "it is GPT-2 (model.arch: gpt2)");
  if (type == HfLlamaType::kLlama) {
    if (c.qkv_bias != c.o_bias)
      throw ConfigError(what + "its attention_bias covers q, k, v and o together (qkv_bias = o_bias)");
    if (c.sliding_window > 0) throw ConfigError(what + "LlamaForCausalLM has no sliding window");
    if (c.n_embd % c.n_head != 0) throw ConfigError(what + "LlamaConfig requires n_embd to be a multiple of n_head");
  } else if (type == HfLlamaType::kQwen2) {
    if (!c.qkv_bias || c.o_bias || c.mlp_bias)
      throw ConfigError(what +
                        "Qwen2 has q/k/v biases and no o_proj or MLP bias (qkv_bias true, o_bias and "
                        "mlp_bias false)");
  } else if (c.qkv_bias || c.o_bias || c.mlp_bias) {
    throw ConfigError(what + "Mistral has no biases");
  }
}

json rope_json(const GptConfig& c, int64_t& max_positions) {
  json rope{{"rope_type", "default"}, {"rope_theta", c.rope_theta}};
  const int64_t original = c.rope_original_context > 0 ? c.rope_original_context : c.block_size;
  max_positions = c.block_size;
  switch (c.rope_scaling) {
    case RopeScaling::kNone: break;
    case RopeScaling::kLinear:
      rope = {{"rope_type", "linear"}, {"rope_theta", c.rope_theta}, {"factor", c.rope_factor}};
      break;
    case RopeScaling::kDynamic:  // transformers scales past max_position_embeddings
      rope = {{"rope_type", "dynamic"}, {"rope_theta", c.rope_theta}, {"factor", c.rope_factor}};
      max_positions = original;
      break;
    case RopeScaling::kLlama3:
      rope = {{"rope_type", "llama3"},
              {"rope_theta", c.rope_theta},
              {"factor", c.rope_factor},
              {"low_freq_factor", c.rope_low_freq_factor},
              {"high_freq_factor", c.rope_high_freq_factor},
              {"original_max_position_embeddings", original}};
      break;
  }
  return rope;
}

nlohmann::ordered_json config_json(const GptConfig& c, HfLlamaType type, const std::string& dtype) {
  check_representable(c, type);
  int64_t max_positions = 0;
  const json rope = rope_json(c, max_positions);
  json legacy = rope;  // transformers 4.x reads rope_theta and rope_scaling
  legacy.erase("rope_theta");
  nlohmann::ordered_json j{{"architectures", {hf_architecture_name(type)}},
                           {"model_type", hf_model_type_name(type)},
                           {"hidden_size", c.n_embd},
                           {"intermediate_size", c.mlp_width()},
                           {"num_hidden_layers", c.n_layer},
                           {"num_attention_heads", c.n_head},
                           {"num_key_value_heads", c.kv_heads()},
                           {"head_dim", c.head_dim()},
                           {"hidden_act", "silu"},
                           {"max_position_embeddings", max_positions},
                           {"rms_norm_eps", c.layer_norm_eps},
                           {"rope_parameters", rope},
                           {"rope_theta", c.rope_theta},
                           {"rope_scaling", c.rope_scaling == RopeScaling::kNone ? json() : legacy},
                           {"tie_word_embeddings", c.tie_embeddings},
                           {"vocab_size", c.vocab_size},
                           {"attention_dropout", 0.0},
                           {"initializer_range", 0.02},
                           {"use_cache", true},
                           {"bos_token_id", nullptr},
                           {"eos_token_id", nullptr},
                           {"pad_token_id", nullptr},
                           {"dtype", dtype}};
  const json window = c.sliding_window > 0 ? json(c.sliding_window) : json();
  if (type == HfLlamaType::kLlama) {
    j["attention_bias"] = c.qkv_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["pretraining_tp"] = 1;
  } else if (type == HfLlamaType::kQwen2) {
    j["use_sliding_window"] = c.sliding_window > 0;
    j["sliding_window"] = window;
    j["max_window_layers"] = c.sliding_window > 0 ? 0 : c.n_layer;
    j["layer_types"] = std::vector<std::string>(static_cast<size_t>(c.n_layer),
                                                c.sliding_window > 0 ? "sliding_attention" : "full_attention");
  } else {
    j["sliding_window"] = window;
  }
  return j;
}

bool is_trunk_parameter(const std::string& name) {
  return (name.rfind("model.", 0) == 0 || name.rfind("lm_head.", 0) == 0) && name.find(".lora_") == std::string::npos;
}

}  // namespace hfl

std::string hf_model_type_name(HfLlamaType type) {
  switch (type) {
    case HfLlamaType::kQwen2: return "qwen2";
    case HfLlamaType::kMistral: return "mistral";
    case HfLlamaType::kLlama: break;
  }
  return "llama";
}

std::string hf_architecture_name(HfLlamaType type) {
  switch (type) {
    case HfLlamaType::kQwen2: return "Qwen2ForCausalLM";
    case HfLlamaType::kMistral: return "MistralForCausalLM";
    case HfLlamaType::kLlama: break;
  }
  return "LlamaForCausalLM";
}

std::optional<HfLlamaType> hf_llama_type(const std::string& model_type) {
  for (HfLlamaType t : {HfLlamaType::kLlama, HfLlamaType::kQwen2, HfLlamaType::kMistral}) {
    if (model_type == hf_model_type_name(t)) return t;
  }
  return std::nullopt;
}

HfLlamaType default_hf_llama_type(const GptConfig& cfg) {
  HfLlamaType type = HfLlamaType::kLlama;
  if (cfg.qkv_bias && !cfg.o_bias && !cfg.mlp_bias) {
    type = HfLlamaType::kQwen2;
  } else if (cfg.sliding_window > 0) {
    type = HfLlamaType::kMistral;
  }
  hfl::check_representable(cfg, type);
  return type;
}

GptConfig read_hf_llama_config(const fs::path& path) {
  const nlohmann::json j = hf_json::read_object(path, "a Llama, Qwen2 or Mistral config");
  const HfLlamaType type = hfl::read_type(path, j);
  const std::string family = hf_architecture_name(type);
  const hfl::Keys keys{path, j, family, ""};
  GptConfig c;
  c.arch = Arch::kLlama;
  c.bias = false;
  c.dropout = 0.0;
  hfl::read_sizes(keys, type, c);
  hfl::read_options(keys, type, c);
  const int64_t max_positions =
      keys.optional<int64_t>("max_position_embeddings", hfl::class_defaults(type).max_position_embeddings);
  hfl::read_rope(path, j, max_positions, family, c);
  try {
    c.check();
  } catch (const ConfigError& e) {
    throw DataError(path.string() + ": " + e.what());
  }
  return c;
}

void write_hf_llama_config(const fs::path& path, const GptConfig& cfg, HfLlamaType type, const std::string& dtype) {
  cfg.check();
  core::write_file_atomic(path, hfl::config_json(cfg, type, dtype).dump(2) + "\n");
}

Gpt load_hf_llama(const fs::path& dir, GptHeads heads) {
  const GptConfig cfg = read_hf_llama_config(dir / "config.json");
  Gpt model(cfg, heads);
  auto named = model->named_parameters(true);
  std::map<std::string, fs::path> seen;  // tensor -> the file it came from
  torch::Tensor tied_head;               // lm_head.weight of a tied model, checked against the embedding at the end
  fs::path tied_head_file;
  torch::NoGradGuard no_grad;
  for_each_safetensors_file(dir, [&](SafetensorsFile& file) {
    for (auto& [name, t] : file.tensors) {
      if (name.size() > 20 && name.compare(name.size() - 20, 20, ".rotary_emb.inv_freq") == 0) continue;
      const std::string where = file.path.string() + ": tensor '" + name + "'";
      if (!torch::isFloatingType(t.scalar_type()))
        throw DataError(where + " has dtype " + c10::toString(t.scalar_type()) + ", expected a floating-point type");
      if (const auto it = seen.find(name); it != seen.end())
        throw DataError(where + " is also in " + it->second.string());
      seen[name] = file.path;
      if (name == "lm_head.weight" && cfg.tie_embeddings) {
        tied_head = t;
        tied_head_file = file.path;
        continue;
      }
      torch::Tensor* target = hfl::is_trunk_parameter(name) ? named.find(name) : nullptr;
      if (target == nullptr) throw DataError(where + " is not a parameter of the model config.json describes");
      if (target->sizes() != t.sizes()) {
        throw DataError(where + " has shape " + c10::str(t.sizes()) + ", config.json gives " +
                        c10::str(target->sizes()));
      }
      target->copy_(t);
    }
  });
  for (const auto& item : named) {
    if (hfl::is_trunk_parameter(item.key()) && !seen.count(item.key()))
      throw DataError(dir.string() + ": missing tensor '" + item.key() + "' (in no weight file)");
  }
  if (tied_head.defined()) {
    const torch::Tensor& wte = model->named_parameters(true)["model.embed_tokens.weight"];
    if (tied_head.sizes() != wte.sizes() || !torch::equal(tied_head.to(wte.scalar_type()), wte)) {
      throw DataError(
          tied_head_file.string() +
          ": tensor 'lm_head.weight' differs from model.embed_tokens.weight but tie_word_embeddings is true");
    }
  }
  return model;
}

void save_hf_llama(const fs::path& dir, Gpt& model, const HfExportOptions& options) {
  const GptConfig& cfg = model->config();
  if (!cfg.llama()) throw ConfigError("save_hf_llama: the model is GPT-2 (model.arch: gpt2); use save_hf_gpt2");
  const HfLlamaType type = options.type ? *options.type : default_hf_llama_type(cfg);
  const NamedTensors params = gpt_trunk_parameters(model);
  const std::string config =
      hfl::config_json(cfg, type, hfl::dtype_name(params.at(0).second.scalar_type())).dump(2) + "\n";
  save_safetensors_shards(dir, params, options.max_shard_bytes);
  core::write_file_atomic(dir / "config.json", config);
}

}  // namespace troupe::models
