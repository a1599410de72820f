// `troupe quantize`: converts a model (a Hugging Face GPT-2 directory, a Troupe run / checkpoint, e.g. a QAT run)
// into a quantized model directory (models/gpt_io.h save_quantized_gpt) that `troupe generate`, `troupe eval`,
// the PPO/GRPO roles and `init_from` load. Prints the layers, the weight bytes before and after, and the largest
// relative weight error per layer kind.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "models/quant.h"

namespace troupe::cli {

namespace {

struct QuantizeArgs {
  std::string model;
  std::string out;
  std::string scheme = "int8";
  int64_t group = 0;
  bool no_double_quant = false;
  bool embedding = false;
  std::vector<std::string> targets{"transformer.*", "model.*", "lm_head"};
  int threads = 0;
};

void run_quantize(const QuantizeArgs& a) {
  core::set_threads(a.threads);
  models::GptQuantConfig q;
  q.options.scheme = models::parse_quant_scheme(a.scheme);
  if (!q.enabled()) throw ConfigError("quantize: --scheme none converts nothing");
  if (a.group < 0 || a.group % 2 != 0) throw ConfigError("quantize: --group must be an even number >= 0");
  q.options.group = a.group;
  q.options.double_quant = !a.no_double_quant;
  q.embedding = a.embedding;
  q.targets = a.targets;
  models::Gpt model = models::load_pretrained_gpt(a.model);
  if (model->quant_config().enabled() && !model->quant_config().fake)
    throw ConfigError("quantize: '" + a.model + "' is already quantized");
  if (model->quant_config().fake) {
    std::cout << fmt::format("{}: trained with {} fake quantization (QAT); converting with --scheme {}\n", a.model,
                             models::quant_scheme_name(model->quant_config().options.scheme), a.scheme);
  }
  model->eval();
  const int64_t before = models::gpt_weight_bytes(model);
  // the weights before, to report the error per layer
  std::map<std::string, torch::Tensor> original;
  for (auto& [name, layer] : model->linear_layers()) original[name] = layer->weight.detach().clone();
  const auto layers = models::quantize_gpt(model, q);
  double worst = 0;
  std::string worst_name;
  for (auto& [name, layer] : model->linear_layers()) {
    if (!layer->quantized()) continue;
    const torch::Tensor w = original.at(name);
    const double err = (layer->quantized_weight().dequantize() - w).norm().item<double>() / w.norm().item<double>();
    if (err > worst) {
      worst = err;
      worst_name = name;
    }
  }
  models::save_quantized_gpt(a.out, model, a.model);
  const int64_t after = models::gpt_weight_bytes(model);
  std::cout << fmt::format(
      "quantized {} layers of {} to {} (group {}{}): weights {:.2f} MB -> {:.2f} MB ({:.2f}x)\n", layers.size(),
      a.model, a.scheme, model->quant_config().options.group,
      q.options.scheme == models::QuantScheme::kNf4 && q.options.double_quant ? ", double quant" : "", before / 1e6,
      after / 1e6, static_cast<double>(before) / static_cast<double>(after));
  if (!worst_name.empty())
    std::cout << fmt::format("largest relative weight error ||W - Q(W)|| / ||W||: {:.4f} ({})\n", worst, worst_name);
  std::cout << "wrote " << (std::filesystem::path(a.out) / "model.safetensors").string() << "\n";
}

}  // namespace

void add_quantize_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Convert a model to int8 / int4 / nf4 / int8_dynamic weights");
  cmd->add_option("--model,-m", args->model,
                  "Hugging Face directory (GPT-2, Llama, Qwen2, Mistral), or a Troupe run / checkpoint directory")
      ->required();
  cmd->add_option("--out,-o", args->out, "output directory (model.safetensors + quantization.json)")->required();
  cmd->add_option("--scheme,-s", args->scheme, "int8 | int4 | nf4 | int8_dynamic")->capture_default_str();
  cmd->add_option("--group", args->group, "int4 group / nf4 block size (0 = 128 / 64)")->capture_default_str();
  cmd->add_flag("--no-double-quant", args->no_double_quant, "nf4: keep the block absmax values in fp32");
  cmd->add_flag("--embedding", args->embedding, "also quantize the tied token embedding / LM head");
  cmd->add_option("--targets", args->targets, "glob patterns over linear layer names")->capture_default_str();
  cmd->add_option("--threads", args->threads, "torch threads (0 = all cores)")->capture_default_str();
  cmd->callback([args, &exit_code] {
    run_quantize(*args);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
