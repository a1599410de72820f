// Sweeps: a config's `sweep:` section expanded into override sets, one per run. Pure functions over config
// trees; running the elements (one after another locally, or as a Slurm job array) is launch_plan.h's and the
// CLI's business.
//
//   sweep:
//     grid:                      # cartesian product, keys in file order, the last key varying fastest
//       task.lr: [1.0e-3, 3.0e-3]
//       seed: [1, 2]
//     list:                      # explicit override sets; with grid: each one combined with every grid point
//       - {task.hidden: 32}
//       - {task.hidden: 64, task.steps: 100}
//
// expands to 2 x 4 = 8 elements: list element 0 with the 4 grid points (lr 1e-3 seed 1, lr 1e-3 seed 2,
// lr 3e-3 seed 1, ...), then list element 1 with the same 4.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/config_tree.h"

namespace troupe::cluster {

struct SweepElement {
  int index = 0;                       // position in the expansion, from 0
  std::string label;                   // "<index>_<key>-<value>_...": a directory name (see sweep_label)
  std::vector<std::string> overrides;  // "dotted.key=value", applied after the command line's overrides
};

// Expands a `sweep:` node. Throws ConfigError naming file:line:col for: a sweep that is not a mapping, an unknown
// key in it (with the nearest of grid/list), a grid that is not a mapping of lists, an empty list, a list item that
// is not a non-empty mapping, a key set twice (by grid and list), keys the sweep may not set (kind, run.name,
// run.dir, sweep.*, cluster.*), and values with tabs or newlines (sweep.tsv keeps one element per line).
std::vector<SweepElement> expand_sweep(const core::ConfigNode& sweep);

// A config value as override text that apply_override reads back as the same value: plain scalars stay as they
// are (3, 1e-3, runs/x), others are double-quoted ("a: b"), lists and mappings are YAML flow ([1, 2], {a: 1}).
std::string override_value_text(const core::ConfigNode& value);
// "key=value" for a plain string value, quoted as override_value_text would quote it.
std::string format_override(const std::string& key, const std::string& value);

// "<index>" then "_<last key segment>-<value>" per override, with every character outside [A-Za-z0-9.+-]
// replaced by '_' and the whole cut to 64 characters: {task.lr: 0.001, seed: 2} at index 3 -> "3_lr-0.001_seed-2".
// Unique within a sweep because of the index.
std::string sweep_label(int index, const std::vector<std::pair<std::string, std::string>>& key_values);

}  // namespace troupe::cluster
