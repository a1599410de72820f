// The experiment kinds `troupe run` knows, chosen by a config's top-level `kind:` key.
// Each kind binds its own typed config; this file only maps names to entry points.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/config_binder.h"
#include "core/config_tree.h"
#include "core/run_session.h"
#include "distributed/library_versions.h"

namespace troupe::experiments {

struct ExperimentKind {
  std::string name;     // value of `kind:` in a config
  std::string summary;  // one line for `troupe run --help` / errors
  // Binds + validates the tree and returns the resolved YAML (with origins/docs comments if asked).
  std::function<std::string(const core::ConfigNode& tree, bool origins, bool docs)> show;
  // Binds, validates and runs; returns the process exit code (0 = finished).
  std::function<int(const core::ConfigNode& tree, const std::string& command_line)> run;
};

const std::vector<ExperimentKind>& experiment_kinds();

// The kind named by the tree's `kind:` key. ConfigError naming the file:line and the valid
// kinds (with the nearest one) when it is missing or unknown.
const ExperimentKind& find_kind(const core::ConfigNode& tree);

// Builds a kind from a typed config struct Cfg (with visit/validate) and its entry point,
// which receives the bound config and its resolved YAML (what goes into the run log).
template <class Cfg>
ExperimentKind make_kind(
    std::string name, std::string summary,
    std::function<int(const Cfg&, const std::string& resolved_yaml, const std::string& command_line)> entry) {
  ExperimentKind kind;
  kind.name = std::move(name);
  kind.summary = std::move(summary);
  kind.show = [](const core::ConfigNode& tree, bool origins, bool docs) {
    auto bound = core::bind_config<Cfg>(tree);
    return core::emit_config(bound.value, &bound.origins, {origins, docs});
  };
  kind.run = [entry](const core::ConfigNode& tree, const std::string& command_line) {
    auto bound = core::bind_config<Cfg>(tree);
    return entry(bound.value, core::emit_config(bound.value, nullptr, {}), command_line);
  };
  return kind;
}

// The run-session options every experiment starts from: a config's run / runtime / checkpoint sections and seed,
// its resolved YAML, the command line and the communication libraries' versions.
template <class Cfg>
core::RunSessionOptions session_options(const Cfg& c, const std::string& resolved_yaml,
                                        const std::string& command_line) {
  core::RunSessionOptions options;
  options.run = c.run;
  options.runtime = c.runtime;
  options.checkpoint = c.checkpoint;
  options.seed = c.seed;
  options.resolved_config_yaml = resolved_yaml;
  options.command_line = command_line;
  options.extra_versions = distributed::communication_library_versions();
  return options;
}

}  // namespace troupe::experiments
