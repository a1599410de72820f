// Implementation of models/gpt_io.h.
#include "models/gpt_io.h"

#include <torch/torch.h>

#include <set>

#include "core/errors.h"
#include "models/hf_gpt2.h"

namespace troupe::models {

namespace {
bool is_trunk_name(const std::string& name) {
  return (name.rfind("transformer.", 0) == 0 || name.rfind("lm_head.", 0) == 0) &&
         name.find(".lora_") == std::string::npos;
}
}  // namespace

NamedTensors gpt_trunk_parameters(Gpt& model) {
  std::map<std::string, torch::Tensor> folded;
  for (auto& [name, layer] : model->linear_layers()) {
    if (layer->has_lora() && !layer->merged()) {
      torch::NoGradGuard no_grad;
      layer->merge_lora();
      folded[name + ".weight"] = layer->weight.detach().clone();
      layer->unmerge_lora();
    }
  }
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

}  // namespace troupe::models
