// `kind: ppo`: RLHF with PPO, the controller in this process and the four roles placed per `placement.mode`:
//   inproc    — each role on a thread of this process behind an inproc:// endpoint (tests, the quickstart);
//   processes — each role (or each group in placement.colocate) a `troupe worker` process this process spawns, over
//   ipc:// (or tcp:// on loopback),
//               with endpoints handed back through rendezvous files in <run>/workers/. The controller watches the
//               processes while it waits for replies: a dead worker stops the run within one heartbeat, naming
//               the role and its exit status, and every worker is torn down (and dies with this process anyway).
// Also `run_ppo_worker`, the body of `troupe worker`.
#pragma once

#include <string>
#include <vector>

#include "experiments/registry.h"

namespace troupe::experiments {

ExperimentKind ppo_kind();

// `troupe worker --config FILE (--role R --endpoint E --endpoint-file F)...`: builds each role R from the resolved
// config, binds its E, writes the bound endpoint to its F (atomically) and serves every role on a thread of its
// own until shutdown, a signal, or the parent's death.
int run_ppo_worker(const std::string& config_file, const std::vector<std::string>& roles,
                   const std::vector<std::string>& endpoints, const std::vector<std::string>& endpoint_files);

}  // namespace troupe::experiments
