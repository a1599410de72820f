// Entry point of the `troupe` CLI: registers subcommands, maps errors to exit codes
// (2: config or data error, 1: runtime failure, 128+N: stopped by signal N).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "core/build_info.h"
#include "core/errors.h"
#include "core/logging.h"

namespace {

std::string join_argv(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Troupe: train and align language models (RLHF, DPO) with workers over ZeroMQ and MPI"};
  app.set_version_flag("--version", std::string("troupe ") + troupe::core::troupe_version() + " (" +
                                        troupe::core::git_sha() + ")");
  app.require_subcommand(1);
  int exit_code = 0;
  troupe::cli::add_info_command(app, exit_code);
  troupe::cli::add_config_command(app, exit_code);
  troupe::cli::add_bench_command(app, exit_code);
  troupe::cli::add_run_command(app, exit_code, join_argv(argc, argv));
  troupe::cli::add_log_command(app, exit_code);
  troupe::cli::add_worker_command(app, exit_code);
  troupe::cli::add_tokenizer_command(app, exit_code);
  troupe::cli::add_data_command(app, exit_code);
  troupe::cli::add_generate_command(app, exit_code);
  troupe::cli::add_train_command(app, exit_code, join_argv(argc, argv));
  troupe::cli::add_eval_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    troupe::core::flush_logging();
    std::cerr << "troupe: error: " << e.what() << "\n";
    return troupe::exit_code_for(e);
  }
  return exit_code;
}
