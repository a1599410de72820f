// What one `troupe run` of a sweep or one `troupe submit` will launch: the config, its fixed run name, and one
// target (run directory + overrides) per run. Every target is bound against its kind before anything starts, so a
// bad sweep element fails up front rather than after the first runs.
//
// Layout: a single run is <run.dir>/<name>/; a sweep's runs are <run.dir>/<name>/<element label>/ (each run's
// run.dir is <run.dir>/<name> and its run.name the element label, e.g. runs/lr-sweep/1_lr-0.003), and
// <run.dir>/<name>/slurm/ holds what `troupe submit` wrote (job.sbatch, job_id, events, sweep.tsv, output).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cluster/launch_sections.h"
#include "core/config_tree.h"
#include "core/run_config.h"

namespace troupe::cluster {

struct LaunchTarget {
  int index = 0;               // sweep element index; 0 for a single run
  std::string label;           // sweep element label ("" for a single run)
  std::string run_name;        // run.name the run gets
  std::string run_dir;         // run.dir the run gets (absolute when the config file sets it; as given otherwise)
  std::filesystem::path path;  // absolute run directory
  std::vector<std::string> overrides;  // the element's overrides, then run.dir (sweeps) and run.name
};

struct LaunchPlan {
  std::filesystem::path config_file;   // absolute
  std::vector<std::string> overrides;  // the command line's overrides
  std::string name;                    // run.name, or a UTC timestamp when it was empty
  std::filesystem::path root;          // absolute <run.dir>/<name>: the run, or the parent of a sweep's runs
  bool sweep = false;                  // the config has a sweep: section
  bool overwrite = false;              // the config's run.overwrite
  LaunchSections sections;             // cluster (bound) and sweep (expanded)
  std::vector<LaunchTarget> targets;   // one for a single run, one per element for a sweep
};

// Binds and validates a config tree (without cluster:/sweep:) against its experiment kind; throws ConfigError.
// Supplied by the caller (the CLI passes experiments::find_kind(tree).show), so this module needs no experiments.
using KindValidator = std::function<void(const core::ConfigNode& tree)>;

// Loads `file` with `overrides`, takes its launch sections, fixes the run name, and builds (and validates) every
// target. ConfigErrors about a sweep element say which element ("sweep element 2 (2_lr-0.01): ...").
LaunchPlan plan_launch(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                       const KindValidator& validate);

// The `run:` section of a tree (defaults for missing keys, no validation: the kind validates it).
core::RunSection read_run_section(const core::ConfigNode& tree);

// sweep.tsv: a "# index<TAB>run<TAB>overrides..." header, then per target its index, run directory and
// overrides, tab-separated. The batch script of an array task appends its row's overrides to troupe's arguments.
std::string sweep_tsv(const LaunchPlan& plan);

}  // namespace troupe::cluster
