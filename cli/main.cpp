// Entry point of the `troupe` CLI: registers subcommands, maps errors to exit codes
// (2: config or data error, 1: runtime failure, 128+N: stopped by signal N).
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "bench/commands.h"
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

// Tensor traffic (rollouts, gradients, messages of megabytes) allocates and frees large blocks every step. With
// glibc's defaults each free of a block above the dynamic mmap threshold returns it to the kernel, and the next
// allocation page-faults it back in: measured, that halves ZeroMQ throughput at 1-16 MB messages. Keeping freed
// memory (up to 64 MiB of slack at the heap top; blocks below 32 MiB served from the heap) costs at most that much
// resident memory per process. Set TROUPE_DEFAULT_MALLOC=1 to keep glibc's defaults.
void tune_allocator() {
  if (const char* keep = std::getenv("TROUPE_DEFAULT_MALLOC"); keep != nullptr && *keep == '1') return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  CLI::App app{"Troupe: train and align language models (RLHF, DPO) with workers over ZeroMQ and MPI"};
  app.set_version_flag("--version",
                       std::string("troupe ") + troupe::core::troupe_version() + " (" + troupe::core::git_sha() + ")");
  app.require_subcommand(1);
  int exit_code = 0;
  troupe::cli::add_info_command(app, exit_code);
  troupe::cli::add_config_command(app, exit_code);
  troupe::bench::add_bench_command(app, exit_code);
  troupe::cli::add_run_command(app, exit_code, join_argv(argc, argv));
  troupe::cli::add_log_command(app, exit_code);
  troupe::cli::add_worker_command(app, exit_code);
  troupe::cli::add_report_command(app, exit_code);
  troupe::cli::add_tokenizer_command(app, exit_code);
  troupe::cli::add_data_command(app, exit_code);
  troupe::cli::add_label_command(app, exit_code);
  troupe::cli::add_generate_command(app, exit_code);
  troupe::cli::add_quantize_command(app, exit_code);
  troupe::cli::add_train_command(app, exit_code, join_argv(argc, argv));
  troupe::cli::add_eval_command(app, exit_code);
  troupe::cli::add_eval_exact_command(*app.get_subcommand("eval"), exit_code);
  troupe::cli::add_eval_metric_command(*app.get_subcommand("eval"), exit_code);
  troupe::cli::add_eval_run_command(*app.get_subcommand("eval"), exit_code);
  troupe::cli::add_eval_probe_command(*app.get_subcommand("eval"), exit_code);
  troupe::cli::add_submit_command(app, exit_code);
  troupe::cli::add_status_command(app, exit_code);
  troupe::cli::add_cancel_command(app, exit_code);
  troupe::cli::add_policy_tool_commands(app, exit_code);
  troupe::cli::add_export_command(app, exit_code);
  troupe::cli::add_dashboard_command(app, exit_code);
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
