// A sweep run on this machine: `troupe run` of a config with a `sweep:` section runs its elements one after
// another, each as a child `troupe run --no-sweep CONFIG ... <element overrides>` (a fresh process per run, as a
// Slurm array task would be), and prints a summary table at the end. Not parallel: one run at a time.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cluster/launch_plan.h"

namespace troupe::cluster {

struct SweepOutcome {
  std::optional<int> exit_code;  // nullopt: not run (an earlier run failed, or it was skipped)
  bool skipped = false;          // already finished and run.overwrite is false: not run again
};

// Runs the targets in order; the first one that exits non-zero stops the sweep, and its code is returned (0 when
// all finished). A run that already finished is skipped unless run.overwrite, so rerunning a sweep after a failure
// continues it; an unfinished one resumes (run.resume=auto). A stop signal (Ctrl-C, SIGTERM, SIGUSR1) goes to the
// running child, which checkpoints, and ends the sweep.
int run_sweep_locally(const LaunchPlan& plan, const std::filesystem::path& troupe, std::ostream& out);

// The table printed at the end: index, run directory, exit, status, last step, and the finish message or last event.
std::string sweep_summary(const LaunchPlan& plan, const std::vector<SweepOutcome>& outcomes);

}  // namespace troupe::cluster
