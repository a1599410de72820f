// `troupe export`: a run in another tool's format. The parent command holds one subcommand per format; this file
// registers it, `export tensorboard` (core/tensorboard_export.h) and `export gguf` (models/gguf_export.h with
// tokenizers/gguf_vocab.h). Not the conversions themselves.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/config_tree.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "core/signals.h"
#include "core/tensorboard_export.h"
#include "models/gguf_export.h"
#include "models/gpt_checkpoint.h"
#include "tokenizers/gguf_vocab.h"

namespace troupe::cli {

namespace {

struct TensorBoardArgs {
  std::string run;
  std::string out;
  bool follow = false;
  double poll_seconds = 2.0;
  std::string precision = "float32";
};

void print_progress(const core::ExportCounts& c) {
  std::cout << fmt::format("exported up to step {}: +{} scalars, +{} texts{}\n",
                           c.last_step ? std::to_string(*c.last_step) : std::string("-"), c.scalars, c.texts,
                           c.restarts ? ", rows after a rollback rewritten" : "")
            << std::flush;
}

void export_tensorboard(const TensorBoardArgs& args) {
  const auto log = core::run_log_path(args.run);
  // RUN/tensorboard for a run directory; beside the file for a log.h5 given directly.
  const std::filesystem::path out =
      !args.out.empty() ? std::filesystem::path(args.out) : log.parent_path() / "tensorboard";
  core::TensorBoardExport exporter(
      log, out, args.precision == "float64" ? core::ScalarPrecision::kFloat64 : core::ScalarPrecision::kFloat32);
  std::cout << "writing " << exporter.event_file().string() << "\n" << std::flush;
  core::ExportCounts total;
  if (args.follow) {
    core::install_stop_handlers();
    core::FollowOptions options;
    options.poll_seconds = args.poll_seconds;
    options.stop = core::stop_requested;
    options.progress = print_progress;
    options.warn = [](const std::string& message) { std::cerr << "troupe: warning: " << message << "\n"; };
    total = core::follow_run(exporter, options);
  } else {
    total = exporter.poll(/*final=*/true);
  }
  exporter.close();
  std::cout << fmt::format("{} scalars and {} text entries in {} (run status: {}){}\n", total.scalars, total.texts,
                           out.string(), exporter.run_status().empty() ? "unknown" : exporter.run_status(),
                           core::stop_requested() ? "; stopped by a signal" : "");
}

void add_tensorboard_command(CLI::App& parent, int& exit_code) {
  auto* cmd = parent.add_subcommand("tensorboard", "Write a run's log.h5 as TensorBoard event files");
  auto args = std::make_shared<TensorBoardArgs>();
  cmd->add_option("run", args->run, "run directory (runs/<name>) or a log.h5 file")->required();
  cmd->add_option("--out", args->out,
                  "directory of the event files (default: RUN/tensorboard); an earlier troupe "
                  "export there is replaced");
  cmd->add_option("--precision", args->precision,
                  "float32: scalars as simple_value, shown by every TensorBoard loader (default); float64: exact "
                  "DT_DOUBLE tensors, shown by `tensorboard --load_fast=false` only")
      ->check(CLI::IsMember({"float32", "float64"}));
  cmd->add_flag("--follow", args->follow, "keep exporting what the run logs until it ends or SIGINT/SIGTERM");
  cmd->add_option("--poll-seconds", args->poll_seconds, "with --follow: seconds between reads of the log")
      ->check(CLI::Range(0.01, 3600.0));
  cmd->callback([args, &exit_code] {
    export_tensorboard(*args);
    exit_code = 0;
  });
}

struct GgufArgs {
  std::string model;
  std::string out;
  std::string type = "f32";
  std::string tokenizer;
  std::string name;
};

// The tokenizer recorded for a model: walking up from MODEL (a checkpoint step, its run, a pipeline run holding
// it), the first config.yaml naming data.tokenizer / prompts.tokenizer, or tokenizer.json / tokenizer.model beside.
std::filesystem::path find_tokenizer(const std::filesystem::path& model) {
  namespace fs = std::filesystem;
  fs::path dir = fs::absolute(model);
  if (!fs::is_directory(dir)) dir = dir.parent_path();
  for (int up = 0; up < 5 && !dir.empty(); ++up, dir = dir.parent_path()) {
    if (fs::exists(dir / "config.yaml")) {
      const core::ConfigNode config = core::load_config_file(dir / "config.yaml");
      for (const char* section : {"data", "prompts"}) {
        const core::ConfigNode* s = config.find(section);
        const core::ConfigNode* t = s != nullptr && s->is_map() ? s->find("tokenizer") : nullptr;
        if (t != nullptr && t->is_scalar() && !t->text().empty() && fs::exists(t->text())) return t->text();
      }
    }
    for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
      if (fs::exists(dir / name)) return dir / name;
    }
    if (dir == dir.parent_path()) break;
  }
  throw ConfigError("export gguf: no tokenizer found for " + model.string() +
                    " (no config.yaml data.tokenizer and no tokenizer.json / tokenizer.model in it or the "
                    "directories above it); give --tokenizer PATH");
}

void export_gguf(const GgufArgs& args) {
  const models::GgufFileType type = models::parse_gguf_file_type(args.type);
  models::Gpt model = models::load_pretrained_gpt(args.model);
  const std::filesystem::path tokenizer =
      args.tokenizer.empty() ? find_tokenizer(args.model) : std::filesystem::path(args.tokenizer);
  const tokenizers::GgufVocab vocab = tokenizers::gguf_vocab_from_file(tokenizer, model->config().vocab_size);
  models::GgufExportOptions options;
  options.type = type;
  options.name = !args.name.empty() ? args.name : std::filesystem::absolute(args.model).filename().string();
  const auto summary = models::export_gguf(model, vocab.key_values(), options, args.out);
  std::cout << fmt::format("wrote {} ({}, {}, {} tensors, {:.1f} MiB of tensor data; tokenizer {} from {})\n", args.out,
                           summary.architecture, args.type, summary.tensors,
                           static_cast<double>(summary.data_bytes) / (1 << 20), vocab.model, tokenizer.string());
  for (const auto& name : summary.fallbacks)
    std::cout << "  " << name << ": rows not a multiple of 32, written as F16 (as convert_hf_to_gguf does)\n";
}

void add_gguf_command(CLI::App& parent, int& exit_code) {
  auto* cmd = parent.add_subcommand("gguf", "Write a model as a GGUF file for llama.cpp");
  auto args = std::make_shared<GgufArgs>();
  cmd->add_option("model", args->model, "run directory, checkpoint directory or Hugging Face directory")->required();
  cmd->add_option("--out,-o", args->out, "the .gguf file to write")->required();
  cmd->add_option("--type", args->type,
                  "tensor encoding: f32, f16, bf16 or q8_0 (norms, biases and 1-D tensors stay f32; q8_0 matrices "
                  "with rows not a multiple of 32 are f16)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}));
  cmd->add_option("--tokenizer,-t", args->tokenizer,
                  "tokenizer to embed (default: the one the run's config.yaml names, or tokenizer.json / "
                  "tokenizer.model in MODEL or a directory above it)");
  cmd->add_option("--name", args->name, "general.name (default: MODEL's directory name)");
  cmd->callback([args, &exit_code] {
    export_gguf(*args);
    exit_code = 0;
  });
}

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("export", "Export a run into another tool's format");
  cmd->require_subcommand(1);
  add_tensorboard_command(*cmd, exit_code);
  add_gguf_command(*cmd, exit_code);
}

}  // namespace troupe::cli
