// Implementation of core/run_session.h.
#include "core/run_session.h"

#include <spdlog/spdlog.h>

#include "core/checkpoint.h"
#include "core/device.h"
#include "core/logging.h"
#include "core/run_metadata.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "core/torch_runtime.h"

namespace troupe::core {

RunSession::RunSession(const RunSessionOptions& options) : options_(options), dir_(RunDirectory::open(options.run)) {
  init_logging(enum_name(options.runtime.log_level), dir_.text_log_file());
  threads_ = set_threads(options.runtime.threads);
  if (options.runtime.deterministic) set_deterministic(true);
  install_stop_handlers();
  write_file_atomic(dir_.config_file(), options.resolved_config_yaml);

  CheckpointOptions ckpt;
  ckpt.root = dir_.checkpoints_dir();
  ckpt.keep_last = options.checkpoint.keep_last;
  checkpoints_ = std::make_unique<CheckpointManager>(ckpt);
  checkpoints_->remove_stale_temporaries();
  resume_state_ = std::make_unique<std::optional<CheckpointState>>();

  const bool log_exists = std::filesystem::exists(dir_.log_file());
  if (dir_.resuming() && log_exists) {
    log_ = std::make_unique<RunLog>(RunLog::open_for_append(dir_.log_file()));
    *resume_state_ = checkpoints_->load_latest();
    const int64_t step = resume_state_->has_value() ? (*resume_state_)->step : -1;
    log_->truncate_after(step);
    log_->set_config(options.resolved_config_yaml);
    log_->log_event(step, "resume",
                    step >= 0 ? "resumed from checkpoint step " + std::to_string(step)
                              : "no complete checkpoint; restarting from step 0");
    spdlog::info("resuming run {} from {}", dir_.path().string(),
                 step >= 0 ? "step " + std::to_string(step) : std::string("the beginning"));
  } else {
    RunMetadata meta = this_process_metadata();
    meta.command_line = options.command_line;
    meta.seed = options.seed;
    meta.world_size = options.world_size;
    const auto libraries = core_library_versions();
    meta.versions.insert(libraries.begin(), libraries.end());
    meta.versions.insert(options.extra_versions.begin(), options.extra_versions.end());
    meta.versions["blas"] = torch_info().blas;
    log_ = std::make_unique<RunLog>(RunLog::create(dir_.log_file(), options.resolved_config_yaml, meta));
    log_->log_event(0, "start", "run " + dir_.name() + " started");
    spdlog::info("run directory {}", dir_.path().string());
  }
  log_->set_attribute("status", to_string(RunStatus::Running));
}

RunSession::~RunSession() {
  if (finished_) return;
  try {
    finish(RunStatus::Failed, -1, "run ended without finishing");
  } catch (...) {
  }
}

const std::optional<CheckpointState>& RunSession::resume_state() const { return *resume_state_; }

bool RunSession::checkpoint_due(int64_t step) const {
  return options_.checkpoint.every > 0 && step > 0 && step % options_.checkpoint.every == 0;
}

void RunSession::save_checkpoint(const CheckpointState& state) {
  auto path = checkpoints_->save(state);
  log_->log_event(state.step, "checkpoint", path.string());
  spdlog::info("checkpoint step {} -> {}", state.step, path.string());
}

void RunSession::finish(RunStatus status, int64_t step, const std::string& message) {
  finished_ = true;
  log_->log_event(step, to_string(status), message);
  log_->set_attribute("status", to_string(status));
  log_->set_attribute("end_time", utc_timestamp());
  log_->flush();
  dir_.set_status(status);
  if (status == RunStatus::Finished)
    spdlog::info("run {}: {}", to_string(status), message);
  else
    spdlog::error("run {}: {}", to_string(status), message);
  flush_logging();
}

}  // namespace troupe::core
