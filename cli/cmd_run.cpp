// `troupe run CONFIG [key=value ...]`: run (or resume) the experiment a config describes.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/config_tree.h"
#include "experiments/registry.h"

namespace troupe::cli {

void add_run_command(CLI::App& app, int& exit_code, const std::string& command_line) {
  std::string kinds;
  for (const auto& k : experiments::experiment_kinds()) kinds += "\n  " + k.name + ": " + k.summary;
  auto* cmd = app.add_subcommand("run", "Run or resume an experiment from a config. Kinds:" + kinds);
  struct Args {
    std::string file;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->file, "YAML config file")->required();
  cmd->add_option("overrides", args->overrides, "dotted overrides, e.g. run.name=test task.steps=50");
  cmd->callback([args, &exit_code, command_line] {
    auto tree = core::load_config(args->file, args->overrides);
    exit_code = experiments::find_kind(tree).run(tree, command_line);
  });
}

}  // namespace troupe::cli
