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
void add_run_command(CLI::App& app, int& exit_code, const std::string& command_line);
void add_log_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app, int& exit_code);
void add_worker_command(CLI::App& app, int& exit_code);
void add_tokenizer_command(CLI::App& app, int& exit_code);
void add_data_command(CLI::App& app, int& exit_code);
void add_data_clean_command(CLI::App& data, int& exit_code);      // `troupe data clean`
void add_data_agreement_command(CLI::App& data, int& exit_code);  // `troupe data agreement`
void add_label_command(CLI::App& app, int& exit_code);            // `troupe label` (cmd_label.cpp)
void add_generate_command(CLI::App& app, int& exit_code);
void add_quantize_command(CLI::App& app, int& exit_code);  // cmd_quantize.cpp
void add_train_command(CLI::App& app, int& exit_code, const std::string& command_line);
void add_eval_command(CLI::App& app, int& exit_code);
// `eval exact`, registered on the `eval` subcommand (cmd_eval_exact.cpp).
void add_eval_exact_command(CLI::App& eval, int& exit_code);
// `eval metric`, registered on the `eval` subcommand (cmd_eval_metric.cpp).
void add_eval_metric_command(CLI::App& eval, int& exit_code);
// `eval run`: the evaluation harness (cmd_eval_run.cpp).
void add_eval_run_command(CLI::App& eval, int& exit_code);
// `eval probe bias|toxicity` (cmd_eval_probe.cpp).
void add_eval_probe_command(CLI::App& eval, int& exit_code);
// `troupe submit|status|cancel`: Slurm jobs and job arrays for runs and sweeps (cmd_cluster.cpp).
void add_submit_command(CLI::App& app, int& exit_code);
void add_status_command(CLI::App& app, int& exit_code);
void add_cancel_command(CLI::App& app, int& exit_code);
// `data split`, `data label-preferences`, `eval policies` (after add_data_command and add_eval_command).
void add_policy_tool_commands(CLI::App& app, int& exit_code);
// `troupe export tensorboard`; formats register on the `export` subcommand (cmd_export.cpp).
void add_export_command(CLI::App& app, int& exit_code);
// `troupe dashboard [RUNS_DIR]`: the live web dashboard (cmd_dashboard.cpp).
void add_dashboard_command(CLI::App& app, int& exit_code);

// gpt2 / r50k_base / p50k_base / cl100k(_base) -> the known pattern; anything else is taken as a regex.
std::string resolve_pattern(const std::string& choice);

}  // namespace troupe::cli
