// `troupe config show|check FILE [key=value ...]`: resolve a config (base files and
// overrides), validate it against its kind's schema, and print it with value origins.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cluster/launch_plan.h"
#include "cluster/launch_sections.h"
#include "core/config_tree.h"
#include "experiments/registry.h"

namespace troupe::cli {

namespace {

struct ConfigArgs {
  std::string file;
  std::vector<std::string> overrides;
  bool no_origins = false;
  bool docs = false;
};

void add_file_and_overrides(CLI::App* cmd, ConfigArgs& args) {
  cmd->add_option("file", args.file, "YAML config file")->required();
  cmd->add_option("overrides", args.overrides, "dotted overrides, e.g. task.lr=1e-3 runtime.threads=2");
}

void validate_kind(const core::ConfigNode& tree) { experiments::find_kind(tree).show(tree, false, false); }

// The launch sections after the kind's config: cluster: as YAML, the sweep's runs as comments. Every sweep
// element is bound against the kind, so a bad one fails here too.
std::string show_launch_sections(const ConfigArgs& args, const cluster::LaunchSections& sections) {
  std::string out;
  if (sections.has_cluster) out += cluster::emit_cluster_section(sections, !args.no_origins, args.docs);
  if (sections.has_sweep) {
    const auto plan = cluster::plan_launch(args.file, args.overrides, validate_kind);
    out += "# sweep: " + std::to_string(plan.targets.size()) + " runs in " + plan.root.string() + "/<label>\n";
    for (const auto& t : plan.targets) {
      out += "#   " + t.label + ":";
      for (const auto& o : t.overrides) out += " " + o;
      out += "\n";
    }
  }
  return out;
}

}  // namespace

void add_config_command(CLI::App& app, int& exit_code) {
  auto* config = app.add_subcommand("config", "Inspect and validate experiment configs");
  config->require_subcommand(1);
  auto args = std::make_shared<ConfigArgs>();

  auto* show = config->add_subcommand("show", "Print the fully resolved config with the origin of each value");
  add_file_and_overrides(show, *args);
  show->add_flag("--no-origins", args->no_origins, "print plain YAML without origin comments");
  show->add_flag("--docs", args->docs, "append each field's documentation");
  show->callback([args, &exit_code] {
    auto tree = core::load_config(args->file, args->overrides);
    const auto sections = cluster::take_launch_sections(tree);
    const auto& kind = experiments::find_kind(tree);
    std::cout << kind.show(tree, !args->no_origins, args->docs) << show_launch_sections(*args, sections);
    exit_code = 0;
  });

  auto* check = config->add_subcommand("check", "Validate a config; exit 2 with the reason if it is wrong");
  add_file_and_overrides(check, *args);
  check->callback([args, &exit_code] {
    auto tree = core::load_config(args->file, args->overrides);
    const auto sections = cluster::take_launch_sections(tree);
    const auto& kind = experiments::find_kind(tree);
    kind.show(tree, false, false);
    show_launch_sections(*args, sections);
    std::cout << args->file << ": OK (kind " << kind.name << ")\n";
    exit_code = 0;
  });
}

}  // namespace troupe::cli
