// The PPO controller: drives the roles through one iteration after another —
//   prompts -> actor.generate -> {actor.logprobs, reference.logprobs, critic.values, reward.score} (concurrent)
//   -> KL-shaped rewards, GAE, whitening (here, over the whole global batch) -> {actor.train, critic.train}
//   (concurrent, same minibatch schedule) -> new policy version -> metrics row -> checkpoint when due
// — and owns the run's state: the HDF5 log, checkpoints (gathering the roles' state), the KL controller, the
// prompt cursor and the weight versions. Every rollout carries the policy version it was generated with; a
// mismatch with the version the controller expects is an error, never silent off-policy training.
// It only knows the roles' endpoints: they may be threads of this process or other processes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/run_session.h"
#include "distributed/curve_keys.h"
#include "rlhf/ppo_config.h"

namespace troupe::rlhf {

struct ControllerOptions {
  using Clock = std::chrono::steady_clock;
  std::map<std::string, std::string> endpoints;  // role name -> ZeroMQ endpoint
  std::optional<distributed::CurveKeys> curve;   // the run's keys when the workers speak CURVE (placement.curve)
  // Called while waiting for a reply (every placement.heartbeat_s) with the roles that owe replies and since when:
  // throws WorkerFailure naming the worker when one died, is stopped, stopped beating, or made no progress for
  // fault.hang_timeout_s while it owed a reply. Empty for in-process roles.
  std::function<void(const std::map<std::string, Clock::time_point>& busy)> check_alive;
  // fault.tolerance restart: kills and restarts the worker processes hosting `roles` and the worker `failed` (a
  // WorkerFailure's worker(), or empty), with any other that is found dead or stopped, waits until they have
  // published their endpoints, and returns every role's endpoint. Empty: failures are not recovered.
  std::function<std::map<std::string, std::string>(const std::set<std::string>& roles, const std::string& failed)>
      restart;
};

// Runs (or resumes, from session.resume_state()) the PPO loop; returns the exit code (0 finished, 128+N on
// signal N after a checkpoint). Throws on a failed role; the caller marks the run failed.
int run_ppo_controller(const PpoConfig& config, core::RunSession& session, const ControllerOptions& options);

}  // namespace troupe::rlhf
