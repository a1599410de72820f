// The top-level config keys that say how a run is launched rather than what it computes: `cluster:` (Slurm
// resources, read by `troupe submit`) and `sweep:` (many runs from one config). Every experiment kind accepts them
// because they are taken off the tree here, in one place, before the kind binds it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_config.h"
#include "cluster/sweep.h"
#include "core/config_binder.h"
#include "core/config_tree.h"

namespace troupe::cluster {

struct LaunchSections {
  bool has_cluster = false;         // the config has a `cluster:` key
  ClusterSection cluster;           // bound and validated (defaults when absent)
  core::OriginMap cluster_origins;  // where each cluster.* value came from
  bool has_sweep = false;           // the config has a non-null `sweep:` key
  std::vector<SweepElement> sweep;  // its expansion (empty without a sweep)
};

// Removes `cluster:` and `sweep:` from the top level of `tree` and returns them bound and expanded. A null
// `sweep:` (e.g. the override sweep=null) means no sweep. Throws ConfigError for unknown keys inside `cluster:`
// (file:line and the nearest valid key, as for any config section), invalid values, and malformed sweeps
// (see expand_sweep).
LaunchSections take_launch_sections(core::ConfigNode& tree);

// The cluster section as YAML under a `cluster:` key, with origin and doc comments as `troupe config show` prints.
std::string emit_cluster_section(const LaunchSections& sections, bool origins, bool docs);

}  // namespace troupe::cluster
