// `troupe train pretrain|sft|rm|dpo CONFIG [overrides]` (the experiment kinds of the same names, checked against the
// config's `kind:`) and `troupe eval perplexity` (a model directory on a token file).
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>

#include "cli/commands.h"
#include "cluster/launch_sections.h"
#include "core/config_tree.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "data/lm_data.h"
#include "experiments/registry.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"

namespace troupe::cli {

void add_train_command(CLI::App& app, int& exit_code, const std::string& command_line) {
  auto* cmd = app.add_subcommand("train", "Train a GPT: pretrain, sft, rm (reward model) or dpo");
  cmd->require_subcommand(1);
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"pretrain", "causal-LM pretraining on token files"},
      {"sft", "supervised fine-tuning, loss on responses only"},
      {"rm", "reward model: Bradley-Terry loss on preference pairs"},
      {"dpo", "direct preference optimisation (dpo | ipo | cdpo) against the starting model"}};
  for (const auto& [kind, summary] : kinds) {
    struct Args {
      std::string file;
      std::vector<std::string> overrides;
    };
    auto args = std::make_shared<Args>();
    auto* sub = cmd->add_subcommand(kind, summary);
    sub->add_option("config", args->file, "YAML config with kind: " + kind)->required();
    sub->add_option("overrides", args->overrides, "dotted overrides, e.g. train.steps=100 run.name=test");
    sub->callback([args, kind = kind, &exit_code, command_line] {
      auto tree = core::load_config(args->file, args->overrides);
      cluster::take_launch_sections(tree);  // cluster: / sweep: are for `troupe run` and `troupe submit`
      const auto& found = experiments::find_kind(tree);
      if (found.name != kind) {
        throw ConfigError(tree.find("kind")->origin().describe() + ": kind is '" + found.name +
                          "', but `troupe train " + kind + "` needs kind: " + kind);
      }
      exit_code = found.run(tree, command_line);
    });
  }
}

void add_eval_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model");
  cmd->require_subcommand(1);
  struct Args {
    std::string checkpoint, data;
    int64_t block_size = 0, batch_size = 8, batches = 0;
    int threads = 0;
  };
  auto args = std::make_shared<Args>();
  auto* ppl = cmd->add_subcommand("perplexity", "Token-mean loss and perplexity of a model on a token file");
  ppl->add_option("--checkpoint,-c", args->checkpoint,
                  "Hugging Face directory (GPT-2 or Llama-family) or Troupe run / checkpoint")
      ->required();
  ppl->add_option("--data", args->data, "token file (troupe data prepare / tokenizer encode)")->required();
  ppl->add_option("--block-size", args->block_size, "tokens per window (0 = the model's block_size)")
      ->capture_default_str();
  ppl->add_option("--batch-size", args->batch_size, "windows per batch")->capture_default_str();
  ppl->add_option("--batches", args->batches, "batches to evaluate (0 = the whole file)")->capture_default_str();
  ppl->add_option("--threads", args->threads, "torch threads (0 = all cores)")->capture_default_str();
  ppl->callback([args, &exit_code] {
    core::set_threads(args->threads);
    models::Gpt model = models::load_pretrained_gpt(args->checkpoint);
    model->eval();
    data::LmBatchOptions o;
    o.batch_size = args->batch_size;
    o.block_size = args->block_size > 0 ? args->block_size : model->config().block_size;
    o.model_vocab_size = model->config().vocab_size;
    if (o.block_size > model->config().block_size) {
      throw ConfigError("--block-size " + std::to_string(o.block_size) + " exceeds the model's block_size " +
                        std::to_string(model->config().block_size));
    }
    data::LmBatchSampler sampler(args->data, o);
    torch::NoGradGuard no_grad;
    double sum = 0;
    int64_t tokens = 0, batches = 0;
    while (args->batches == 0 || batches < args->batches) {
      const auto b = sampler.next_sequential();
      if (!b) break;
      const torch::Tensor logits = model->forward(b->input_ids);
      sum +=
          torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), b->targets.reshape({-1}),
                                               torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
              .item<double>();
      tokens += b->input_ids.numel();
      ++batches;
    }
    if (tokens == 0) throw DataError(args->data + ": no complete window to evaluate");
    const double loss = sum / static_cast<double>(tokens);
    std::cout << fmt::format("{}: {} tokens in {} windows of {}: loss {:.4f}, perplexity {:.3f}\n", args->data, tokens,
                             tokens / o.block_size, o.block_size, loss, std::exp(loss));
    exit_code = 0;
  });
}

}  // namespace troupe::cli
