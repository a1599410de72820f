// Config sections shared by every kind of Troupe run: where it goes, threads, checkpoints.
// Subsystem configs (model, train, ppo, ...) live with their modules and embed these.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "core/config_binder.h"
#include "core/device_spec.h"

namespace troupe::core {

// What to do with an existing unfinished run of the same name.
enum class ResumePolicy { kAuto, kNever, kMust };
constexpr auto config_names(ResumePolicy) {
  return std::array{std::pair{ResumePolicy::kAuto, "auto"}, std::pair{ResumePolicy::kNever, "never"},
                    std::pair{ResumePolicy::kMust, "must"}};
}

// Console and text-log verbosity (spdlog's levels).
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
constexpr auto config_names(LogLevel) {
  return std::array{std::pair{LogLevel::kTrace, "trace"}, std::pair{LogLevel::kDebug, "debug"},
                    std::pair{LogLevel::kInfo, "info"}, std::pair{LogLevel::kWarn, "warn"},
                    std::pair{LogLevel::kError, "error"}};
}

// Where a run's directory is and what to do when it already exists.
struct RunSection {
  std::string name;                           // run directory name under `dir`; empty = a UTC timestamp
  std::string dir = "runs";                   // parent directory of run directories
  ResumePolicy resume = ResumePolicy::kAuto;  // auto: resume an unfinished run; never: refuse; must: fail if none
  bool overwrite = false;                     // replace an existing (even finished) run directory

  template <class V>
  void visit(V& v) {
    v.field("name", name, "run directory name under run.dir; empty = UTC timestamp");
    v.path("dir", dir, "parent directory of run directories");
    v.field("resume", resume, "auto | never | must: what to do with an unfinished run of this name");
    v.field("overwrite", overwrite, "replace an existing run directory, even a finished one");
  }
  void validate(ConfigValidator& v) const {
    v.require(name.find('/') == std::string::npos && name != "." && name != "..", "name", name,
              "a plain directory name (no '/')");
    v.require(!dir.empty(), "dir", dir, "a non-empty path");
  }
};

// Process-wide runtime settings.
struct RuntimeSection {
  int threads = 0;                       // ATen threads (and so MKL/oneDNN); 0 = all cores
  LogLevel log_level = LogLevel::kInfo;  // trace | debug | info | warn | error
  std::string device = "auto";  // auto | cpu | cuda | cuda:N (auto: the local rank's GPU when one exists, else CPU)
  bool deterministic = false;   // deterministic algorithms on CPU and CUDA (slower on GPUs)

  template <class V>
  void visit(V& v) {
    v.field("threads", threads, "ATen threads (and so MKL/oneDNN); 0 = all cores");
    v.field("log_level", log_level, "trace | debug | info | warn | error");
    v.field("device", device, "auto | cpu | cuda | cuda:N; auto = the local rank's GPU when one exists, else CPU");
    v.field("deterministic", deterministic, "deterministic algorithms on CPU and CUDA");
  }
  void validate(ConfigValidator& v) const {
    v.require(threads >= 0 && threads <= 1024, "threads", threads, "an integer in [0, 1024] (0 = all cores)");
    v.require(valid_device_spec(device), "device", device, device_spec_expected());
  }
};

// When checkpoints are written and how many are kept.
struct CheckpointSection {
  int64_t every = 0;      // write a checkpoint every N steps; 0 = only at the end and on signals
  int keep_last = 3;      // keep the newest K checkpoints; 0 = keep all
  bool on_signal = true;  // checkpoint on SIGTERM/SIGUSR1 (Slurm preemption) and SIGINT before exiting

  template <class V>
  void visit(V& v) {
    v.field("every", every, "checkpoint every N steps; 0 = only at the end and on signals");
    v.field("keep_last", keep_last, "keep the newest K checkpoints; 0 = keep all");
    v.field("on_signal", on_signal, "checkpoint on SIGTERM/SIGUSR1/SIGINT before exiting");
  }
  void validate(ConfigValidator& v) const {
    v.require(every >= 0, "every", every, "an integer >= 0");
    v.require(keep_last >= 0, "keep_last", keep_last, "an integer >= 0");
  }
};

}  // namespace troupe::core
