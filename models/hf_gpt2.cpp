// Implementation of models/hf_gpt2.h: the GPT-2 parameter table, renaming and Conv1D transposes, and
// GPT2Config's config.json.
#include "models/hf_gpt2.h"

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/errors.h"
#include "core/run_dir.h"
#include "models/hf_json.h"
#include "models/safetensors_shards.h"

namespace troupe::models {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "transformer.";
constexpr const char* kLmHead = "lm_head.weight";
constexpr size_t kMaxListed = 12;  // problems listed in one error message

// One parameter of the full (biased) GPT-2 layout, in Troupe's [out, in] shape.
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool conv1d = false;  // Hugging Face stores it transposed
  bool bias = false;    // absent from Troupe's parameters when cfg.bias is false
};

std::vector<ParamSpec> full_layout(const GptConfig& cfg) {
  const int64_t d = cfg.n_embd;
  std::vector<ParamSpec> specs{{"transformer.wte.weight", {cfg.vocab_size, d}},
                               {"transformer.wpe.weight", {cfg.block_size, d}}};
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool conv1d, bool bias) {
    specs.push_back({name, std::move(shape), conv1d, bias});
  };
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    const std::string h = "transformer.h." + std::to_string(i) + ".";
    add(h + "ln_1.weight", {d}, false, false);
    add(h + "ln_1.bias", {d}, false, true);
    add(h + "attn.c_attn.weight", {3 * d, d}, true, false);
    add(h + "attn.c_attn.bias", {3 * d}, false, true);
    add(h + "attn.c_proj.weight", {d, d}, true, false);
    add(h + "attn.c_proj.bias", {d}, false, true);
    add(h + "ln_2.weight", {d}, false, false);
    add(h + "ln_2.bias", {d}, false, true);
    add(h + "mlp.c_fc.weight", {4 * d, d}, true, false);
    add(h + "mlp.c_fc.bias", {4 * d}, false, true);
    add(h + "mlp.c_proj.weight", {d, 4 * d}, true, false);
    add(h + "mlp.c_proj.bias", {d}, false, true);
  }
  add("transformer.ln_f.weight", {d}, false, false);
  add("transformer.ln_f.bias", {d}, false, true);
  if (!cfg.tie_embeddings) add(kLmHead, {cfg.vocab_size, d}, false, false);
  return specs;
}

std::string shape_text(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// Collects every problem with a tensor set, then throws them as one DataError.
class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}
  void add(std::string what) { items_.push_back(std::move(what)); }
  void throw_if_any() const {
    if (items_.empty()) return;
    std::string msg = source_ + ": " + std::to_string(items_.size()) + " problem(s): ";
    for (size_t i = 0; i < items_.size() && i < kMaxListed; ++i) msg += (i ? "; " : "") + items_[i];
    if (items_.size() > kMaxListed) msg += "; ...";
    throw DataError(msg);
  }

 private:
  std::string source_;
  std::vector<std::string> items_;
};

// Indexes `params` by name; duplicates are problems.
std::unordered_map<std::string, at::Tensor> index_by_name(const NamedTensors& params, Problems& problems,
                                                          const std::function<std::string(const std::string&)>& key) {
  std::unordered_map<std::string, at::Tensor> out;
  for (const auto& [name, t] : params) {
    if (!out.emplace(key(name), t).second) problems.add("duplicate tensor '" + name + "'");
  }
  return out;
}

void check_shape(Problems& problems, const std::string& name, const at::Tensor& t, c10::IntArrayRef expected,
                 const char* layout) {
  if (!t.defined()) {
    problems.add("tensor '" + name + "' is undefined");
  } else if (t.sizes() != expected) {
    problems.add("tensor '" + name + "' has shape " + shape_text(t.sizes()) + ", expected " + shape_text(expected) +
                 layout);
  }
}

std::vector<int64_t> transposed(std::vector<int64_t> shape) {
  std::swap(shape[0], shape[1]);
  return shape;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> gpt_parameter_shapes(const GptConfig& cfg) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& s : full_layout(cfg)) {
    if (!s.bias || cfg.bias) out.emplace_back(s.name, s.shape);
  }
  return out;
}

NamedTensors to_hf_gpt2(const NamedTensors& troupe_params, const GptConfig& cfg) {
  cfg.check();
  Problems problems("Troupe GPT parameters -> Hugging Face GPT-2");
  auto by_name = index_by_name(troupe_params, problems, [](const std::string& n) { return n; });
  const std::vector<ParamSpec> specs = full_layout(cfg);
  std::set<std::string> expected;
  for (const auto& s : specs) {
    if (s.bias && !cfg.bias) continue;
    expected.insert(s.name);
    const auto it = by_name.find(s.name);
    if (it == by_name.end()) {
      problems.add("missing tensor '" + s.name + "' " + shape_text(s.shape));
    } else {
      check_shape(problems, s.name, it->second, s.shape, " (Linear [out, in])");
    }
  }
  for (const auto& [name, t] : troupe_params) {
    if (!expected.count(name)) problems.add("unexpected tensor '" + name + "'");
  }
  problems.throw_if_any();
  const at::Tensor& wte = by_name.at("transformer.wte.weight");
  NamedTensors out;
  out.reserve(specs.size());
  for (const auto& s : specs) {
    if (s.bias && !cfg.bias) {
      out.emplace_back(s.name, torch::zeros(s.shape, wte.options()));  // no bias == zero bias
    } else {
      const at::Tensor& t = by_name.at(s.name);
      out.emplace_back(s.name, s.conv1d ? t.t().contiguous() : t);
    }
  }
  return out;
}

NamedTensors from_hf_gpt2(const NamedTensors& hf_params, const GptConfig& cfg, const std::string& source) {
  cfg.check();
  Problems problems(source);
  auto canonical = [](const std::string& n) { return n.rfind(kPrefix, 0) == 0 || n == kLmHead ? n : kPrefix + n; };
  NamedTensors kept;  // without the attention-mask buffers, which GPT2Attention recomputes
  for (const auto& [name, t] : hf_params) {
    if (!name.ends_with(".attn.bias") && !name.ends_with(".attn.masked_bias")) kept.emplace_back(name, t);
  }
  auto by_name = index_by_name(kept, problems, canonical);
  const std::vector<ParamSpec> specs = full_layout(cfg);
  std::set<std::string> expected;
  for (const auto& s : specs) {
    expected.insert(s.name);
    const auto it = by_name.find(s.name);
    if (it == by_name.end()) {
      problems.add("missing tensor '" + s.name + "' " + shape_text(s.conv1d ? transposed(s.shape) : s.shape));
      continue;
    }
    check_shape(problems, s.name, it->second, s.conv1d ? transposed(s.shape) : s.shape,
                s.conv1d ? " (Conv1D [in, out])" : "");
    if (s.bias && !cfg.bias && it->second.defined() && it->second.sizes() == c10::IntArrayRef(s.shape) &&
        it->second.any().item<bool>()) {
      problems.add("tensor '" + s.name + "' is non-zero but the config has bias = false");
    }
  }
  for (const auto& [name, t] : kept) {
    const std::string key = canonical(name);
    if (key == kLmHead && cfg.tie_embeddings && by_name.count("transformer.wte.weight")) {
      const at::Tensor& wte = by_name.at("transformer.wte.weight");
      if (!t.defined() || t.sizes() != wte.sizes() || !torch::equal(t, wte)) {
        problems.add("lm_head.weight differs from transformer.wte.weight but tie_word_embeddings is true");
      }
    } else if (!expected.count(key)) {
      problems.add("unexpected tensor '" + name + "'");
    }
  }
  problems.throw_if_any();
  NamedTensors out;
  for (const auto& s : specs) {
    if (s.bias && !cfg.bias) continue;
    const at::Tensor& t = by_name.at(s.name);
    out.emplace_back(s.name, s.conv1d ? t.t().contiguous() : t);
  }
  return out;
}

void write_hf_config_json(const fs::path& path, const GptConfig& cfg) {
  cfg.check();
  const nlohmann::ordered_json j{{"model_type", "gpt2"},
                                 {"architectures", {"GPT2LMHeadModel"}},
                                 {"n_layer", cfg.n_layer},
                                 {"n_head", cfg.n_head},
                                 {"n_embd", cfg.n_embd},
                                 {"n_positions", cfg.block_size},
                                 {"n_ctx", cfg.block_size},
                                 {"n_inner", nullptr},
                                 {"vocab_size", cfg.vocab_size},
                                 {"layer_norm_epsilon", cfg.layer_norm_eps},
                                 {"activation_function", "gelu_new"},
                                 {"resid_pdrop", cfg.dropout},
                                 {"embd_pdrop", cfg.dropout},
                                 {"attn_pdrop", cfg.dropout},
                                 {"scale_attn_weights", true},
                                 {"tie_word_embeddings", cfg.tie_embeddings}};
  core::write_file_atomic(path, j.dump(2) + "\n");
}

namespace {

using hf_json::bad_key;

// Reads j[key] as T when present (null counts as absent); `fallback` when absent; DataError when mistyped.
template <class T>
T get_key(const fs::path& path, const nlohmann::json& j, const std::string& key, const T* fallback) {
  return hf_json::get<T>(path, j, key, fallback, "GPT-2");
}

// Keys naming GPT2Config options this model does not implement, and the value that is supported.
void check_supported(const fs::path& path, const nlohmann::json& j, int64_t n_embd) {
  const std::string fallback_model = "gpt2";
  if (get_key<std::string>(path, j, "model_type", &fallback_model) != "gpt2") {
    bad_key(path, "model_type", "expected \"gpt2\", got " + j["model_type"].dump());
  }
  const std::string fallback_act = "gelu_new";
  const std::string act = get_key<std::string>(path, j, "activation_function", &fallback_act);
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    bad_key(path, "activation_function", "unsupported activation '" + act + "' (Troupe's GPT uses gelu_new)");
  }
  const int64_t four_d = 4 * n_embd;
  if (get_key<int64_t>(path, j, "n_inner", &four_d) != four_d) {
    bad_key(path, "n_inner", "unsupported: Troupe's GPT has an MLP width of 4 * n_embd = " + std::to_string(four_d));
  }
  const bool yes = true, no = false;
  if (!get_key<bool>(path, j, "scale_attn_weights", &yes)) bad_key(path, "scale_attn_weights", "false is unsupported");
  if (get_key<bool>(path, j, "scale_attn_by_inverse_layer_idx", &no)) {
    bad_key(path, "scale_attn_by_inverse_layer_idx", "true is unsupported");
  }
  if (get_key<bool>(path, j, "add_cross_attention", &no)) bad_key(path, "add_cross_attention", "true is unsupported");
}

}  // namespace

GptConfig read_hf_config_json(const fs::path& path) {
  const nlohmann::json j = hf_json::read_object(path, "GPT2Config");
  GptConfig cfg;
  cfg.n_layer = get_key<int64_t>(path, j, "n_layer", nullptr);
  cfg.n_head = get_key<int64_t>(path, j, "n_head", nullptr);
  cfg.n_embd = get_key<int64_t>(path, j, "n_embd", nullptr);
  const bool only_ctx = (!j.contains("n_positions") || j["n_positions"].is_null()) && j.contains("n_ctx");
  cfg.block_size = get_key<int64_t>(path, j, only_ctx ? "n_ctx" : "n_positions", nullptr);
  cfg.vocab_size = get_key<int64_t>(path, j, "vocab_size", nullptr);
  const double eps = 1e-5, pdrop = 0.1;
  const bool tied = true;
  cfg.layer_norm_eps = get_key<double>(path, j, "layer_norm_epsilon", &eps);
  cfg.dropout = get_key<double>(path, j, "resid_pdrop", &pdrop);
  for (const char* key : {"embd_pdrop", "attn_pdrop"}) {
    if (get_key<double>(path, j, key, &pdrop) != cfg.dropout) {
      bad_key(path, key, "differs from resid_pdrop; Troupe's GPT has one dropout probability");
    }
  }
  cfg.tie_embeddings = get_key<bool>(path, j, "tie_word_embeddings", &tied);
  cfg.bias = true;
  check_supported(path, j, cfg.n_embd);
  try {
    cfg.check();
  } catch (const ConfigError& e) {
    throw DataError(path.string() + ": " + e.what());
  }
  return cfg;
}

void export_hf_gpt2_dir(const fs::path& dir, const NamedTensors& params, const GptConfig& cfg) {
  const NamedTensors hf = to_hf_gpt2(params, cfg);  // validates before anything is written
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir.string() + ": " + ec.message());
  save_safetensors(dir / "model.safetensors", hf, {{"format", "pt"}});
  write_hf_config_json(dir / "config.json", cfg);
}

HfGpt2Checkpoint import_hf_gpt2_dir(const fs::path& dir) {
  if (!has_safetensors_weights(dir)) {
    throw IoError((dir / kSafetensorsSingle).string() +
                  ": not found (nor model.safetensors.index.json; only safetensors checkpoints are read, "
                  "convert pytorch_model.bin first)");
  }
  HfGpt2Checkpoint out;
  out.config = read_hf_config_json(dir / "config.json");
  NamedTensors tensors;
  const bool sharded = !fs::exists(dir / kSafetensorsSingle);
  for_each_safetensors_file(dir, [&](SafetensorsFile& file) {
    for (auto& named : file.tensors) tensors.push_back(std::move(named));
  });
  out.params = from_hf_gpt2(tensors, out.config, (dir / (sharded ? kSafetensorsIndex : kSafetensorsSingle)).string());
  return out;
}

}  // namespace troupe::models
