// Implementation of cluster/launch_plan.h.
#include "cluster/launch_plan.h"

#include <chrono>

#include "core/errors.h"
#include "core/runtime.h"

namespace troupe::cluster {
namespace fs = std::filesystem;

core::RunSection read_run_section(const core::ConfigNode& tree) {
  core::RunSection run;
  core::OriginMap origins;
  core::ConfigBinder binder(tree.find("run"), "run", origins);
  run.visit(binder);
  return run;
}

namespace {

core::ConfigNode load_target(const fs::path& file, const std::vector<std::string>& overrides,
                             const std::vector<std::string>& extra) {
  std::vector<std::string> all = overrides;
  all.insert(all.end(), extra.begin(), extra.end());
  core::ConfigNode tree = core::load_config(file, all);
  take_launch_sections(tree);
  return tree;
}

}  // namespace

LaunchPlan plan_launch(const fs::path& file, const std::vector<std::string>& overrides, const KindValidator& validate) {
  LaunchPlan plan;
  plan.config_file = fs::absolute(file);
  plan.overrides = overrides;
  core::ConfigNode tree = core::load_config(file, overrides);
  plan.sections = take_launch_sections(tree);
  plan.sweep = plan.sections.has_sweep;
  validate(tree);  // the base config (without any element) must be valid too

  const core::RunSection run = read_run_section(tree);
  plan.overwrite = run.overwrite;
  plan.name = run.name.empty() ? core::format_utc(std::chrono::system_clock::now(), "%Y%m%d-%H%M%S") : run.name;
  plan.root = fs::absolute(fs::path(run.dir) / plan.name).lexically_normal();

  if (!plan.sweep) {
    LaunchTarget t;
    t.run_name = plan.name;
    t.run_dir = run.dir;
    t.path = plan.root;
    t.overrides = {format_override("run.name", plan.name)};
    plan.targets.push_back(std::move(t));
    return plan;
  }
  const std::string sweep_dir = (fs::path(run.dir) / plan.name).lexically_normal().string();
  for (const auto& element : plan.sections.sweep) {
    LaunchTarget t;
    t.index = element.index;
    t.label = element.label;
    t.run_name = element.label;
    t.run_dir = sweep_dir;
    t.path = plan.root / element.label;
    t.overrides = element.overrides;
    t.overrides.push_back(format_override("run.dir", sweep_dir));
    t.overrides.push_back(format_override("run.name", element.label));
    try {
      validate(load_target(file, overrides, t.overrides));
    } catch (const ConfigError& e) {
      throw ConfigError("sweep element " + std::to_string(element.index) + " (" + element.label + "): " + e.what());
    }
    plan.targets.push_back(std::move(t));
  }
  return plan;
}

std::string sweep_tsv(const LaunchPlan& plan) {
  std::string s = "# index\trun\toverrides...\n";
  for (const auto& t : plan.targets) {
    s += std::to_string(t.index) + "\t" + (fs::path(t.run_dir) / t.run_name).string();
    for (const auto& o : t.overrides) s += "\t" + o;
    s += "\n";
  }
  return s;
}

}  // namespace troupe::cluster
