// `troupe run CONFIG [key=value ...] [--resume] [--no-sweep]`: run (or resume) the experiment a config describes,
// or each run of its sweep one after another; and `troupe worker`, one PPO role as a process.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cluster/launch_plan.h"
#include "cluster/launch_sections.h"
#include "cluster/local_sweep.h"
#include "core/config_tree.h"
#include "core/runtime.h"
#include "experiments/ppo_experiment.h"
#include "experiments/registry.h"

namespace troupe::cli {

void add_run_command(CLI::App& app, int& exit_code, const std::string& command_line) {
  std::string kinds;
  for (const auto& k : experiments::experiment_kinds()) kinds += "\n  " + k.name + ": " + k.summary;
  auto* cmd = app.add_subcommand("run", "Run or resume an experiment from a config. Kinds:" + kinds);
  struct Args {
    std::string file;
    std::vector<std::string> overrides;
    bool resume = false;
    bool no_sweep = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->file, "YAML config file")->required();
  cmd->add_option("overrides", args->overrides, "dotted overrides, e.g. run.name=test task.steps=50");
  cmd->add_flag("--resume", args->resume, "continue the run from its last checkpoint (same as run.resume=must)");
  cmd->add_flag("--no-sweep", args->no_sweep,
                "ignore the config's sweep: section and run it once (what each Slurm array task of a sweep does)");
  cmd->callback([args, &exit_code, command_line] {
    std::vector<std::string> overrides = args->overrides;
    if (args->resume) overrides.push_back("run.resume=must");
    auto tree = core::load_config(args->file, overrides);
    // cluster: and sweep: describe how runs are launched, not the run: no kind binds them.
    const auto sections = cluster::take_launch_sections(tree);
    if (sections.has_sweep && !args->no_sweep) {
      const auto plan = cluster::plan_launch(
          args->file, overrides, [](const core::ConfigNode& t) { experiments::find_kind(t).show(t, false, false); });
      exit_code = cluster::run_sweep_locally(plan, core::current_executable(), std::cout);
      return;
    }
    exit_code = experiments::find_kind(tree).run(tree, command_line);
  });
}

void add_worker_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string config;
    std::vector<std::string> roles, endpoints, endpoint_files;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("worker",
                                 "One PPO role as a process (started by `troupe run` with placement.mode "
                                 "= processes, or by a launcher such as srun)");
  cmd->add_option("--config", args->config, "the run's resolved config.yaml")->required();
  cmd->add_option("--role", args->roles, "actor | critic | reward | reference (repeat to host several roles)")
      ->required();
  cmd->add_option("--endpoint", args->endpoints, "ZeroMQ endpoint to bind per role (ipc://PATH, tcp://HOST:PORT or :*)")
      ->required();
  cmd->add_option("--endpoint-file", args->endpoint_files, "where to publish each bound endpoint")->required();
  cmd->callback([args, &exit_code] {
    exit_code = experiments::run_ppo_worker(args->config, args->roles, args->endpoints, args->endpoint_files);
  });
}

}  // namespace troupe::cli
