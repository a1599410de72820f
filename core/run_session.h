// A run's spine for the process that owns it (rank 0 / the controller): the run directory,
// troupe.log, log.h5, checkpoints, threads, stop signals and the final status. It does not
// train anything: experiments drive it step by step.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/run_config.h"
#include "core/run_dir.h"
#include "core/run_log.h"

namespace troupe::core {

class CheckpointManager;
struct CheckpointState;

struct RunSessionOptions {
  RunSection run;
  RuntimeSection runtime;
  CheckpointSection checkpoint;
  int64_t seed = 0;
  std::string resolved_config_yaml;  // written to config.yaml and the log's `config` attribute
  std::string command_line;          // argv joined by spaces
  int world_size = 1;
  std::map<std::string, std::string> extra_versions;  // e.g. MPI and ZeroMQ, from higher modules
};

class RunSession {
 public:
  // Opens (or resumes) the run directory, starts logging to troupe.log, sets threads, creates
  // or reopens log.h5, installs stop handlers, and on resume loads the newest complete
  // checkpoint and drops log rows newer than it.
  explicit RunSession(const RunSessionOptions& options);
  ~RunSession();  // a session destroyed without finish() is marked failed
  RunSession(const RunSession&) = delete;
  RunSession& operator=(const RunSession&) = delete;

  const RunDirectory& directory() const { return dir_; }
  RunLog& log() { return *log_; }
  CheckpointManager& checkpoints() { return *checkpoints_; }
  const RunSessionOptions& options() const { return options_; }
  int threads() const { return threads_; }

  // The checkpoint to resume from, when resuming and one exists.
  const std::optional<CheckpointState>& resume_state() const;

  // True when a checkpoint is due after `step` (every N steps).
  bool checkpoint_due(int64_t step) const;
  // Saves a checkpoint and records a "checkpoint" event.
  void save_checkpoint(const CheckpointState& state);

  // Marks the run finished / interrupted / failed: status file, log attributes, an event.
  void finish(RunStatus status, int64_t step, const std::string& message);

 private:
  RunSessionOptions options_;
  RunDirectory dir_;
  std::unique_ptr<RunLog> log_;
  std::unique_ptr<CheckpointManager> checkpoints_;
  std::unique_ptr<std::optional<CheckpointState>> resume_state_;
  int threads_ = 1;
  bool finished_ = false;
};

}  // namespace troupe::core
