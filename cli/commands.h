// Subcommands of the `troupe` CLI. Each add_* registers one subcommand on `app`; its
// callback stores the process exit code in `exit_code`. Only main() prints errors.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace troupe::cli {

void add_info_command(CLI::App& app, int& exit_code);
void add_config_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
// `bench decode`, registered on the `bench` subcommand (cmd_bench_decode.cpp).
void add_bench_decode_command(CLI::App& bench, int& exit_code);
void add_bench_train_command(CLI::App& bench, int& exit_code);
void add_bench_transport_command(CLI::App& bench, int& exit_code);
void add_bench_allreduce_command(CLI::App& bench, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code, const std::string& command_line);
void add_log_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app, int& exit_code);
void add_worker_command(CLI::App& app, int& exit_code);
void add_tokenizer_command(CLI::App& app, int& exit_code);
void add_data_command(CLI::App& app, int& exit_code);
void add_generate_command(CLI::App& app, int& exit_code);
void add_train_command(CLI::App& app, int& exit_code, const std::string& command_line);
void add_eval_command(CLI::App& app, int& exit_code);
// `eval exact`, registered on the `eval` subcommand (cmd_eval_exact.cpp).
void add_eval_exact_command(CLI::App& eval, int& exit_code);
// `troupe submit|status|cancel`: Slurm jobs and job arrays for runs and sweeps (cmd_cluster.cpp).
void add_submit_command(CLI::App& app, int& exit_code);
void add_status_command(CLI::App& app, int& exit_code);
void add_cancel_command(CLI::App& app, int& exit_code);
// `data split`, `data label-preferences`, `eval policies` (after add_data_command and add_eval_command).
void add_policy_tool_commands(CLI::App& app, int& exit_code);
// `tokenizer bench`, registered on the `tokenizer` subcommand (cmd_tokenizer_bench.cpp).
void add_tokenizer_bench_command(CLI::App& tokenizer, int& exit_code);

// Adds `--device` (auto | cpu | cuda | cuda:N; auto = this process's GPU when one is visible, else the CPU) to
// `cmd`, checked with core::valid_device_spec; resolve it with core::resolve_device(spec, local_rank(), "--device").
void add_device_option(CLI::App* cmd, std::string& spec);

// gpt2 / r50k_base / p50k_base / cl100k(_base) -> the known pattern; anything else is taken as a regex.
std::string resolve_pattern(const std::string& choice);

}  // namespace troupe::cli
