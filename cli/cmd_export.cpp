// `troupe export`: a run in another tool's format. The parent command holds one subcommand per format; this file
// registers it and `export tensorboard` (core/tensorboard_export.h). Not the conversion itself.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "core/signals.h"
#include "core/tensorboard_export.h"

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

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("export", "Export a run into another tool's format");
  cmd->require_subcommand(1);
  add_tensorboard_command(*cmd, exit_code);
}

}  // namespace troupe::cli
