// The run directory: runs/<name>/ holds config.yaml, log.h5, troupe.log, checkpoints/
// and a `status` file. Decides between a new run, resuming an unfinished one, and
// refusing to clobber a finished one. Not the writer of any of those files but `status`.
#pragma once

#include <filesystem>
#include <string>

#include "core/run_config.h"

namespace troupe::core {

enum class RunStatus { Running, Finished, Failed, Interrupted };
std::string to_string(RunStatus s);

class RunDirectory {
 public:
  // Creates runs/<name>/ or reopens an unfinished one, per `section`:
  //  - absent: created (unless resume == "must": ConfigError);
  //  - finished: ConfigError unless overwrite (then wiped and recreated);
  //  - running/failed/interrupted: resumed (resume == "never": ConfigError unless overwrite).
  // Holds an exclusive lock (flock on runs/<name>/.lock) so two processes never write one run. A new run directory
  // is created with mode 0700: it holds the run's CURVE keys and the workers' rendezvous files.
  static RunDirectory open(const RunSection& section);
  ~RunDirectory();
  RunDirectory(RunDirectory&& other) noexcept;
  RunDirectory& operator=(RunDirectory&&) = delete;
  RunDirectory(const RunDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::string& name() const { return name_; }
  bool resuming() const { return resuming_; }  // true when an unfinished run was reopened

  std::filesystem::path config_file() const { return path_ / "config.yaml"; }
  std::filesystem::path log_file() const { return path_ / "log.h5"; }
  std::filesystem::path text_log_file() const { return path_ / "troupe.log"; }
  std::filesystem::path checkpoints_dir() const { return path_ / "checkpoints"; }

  // Writes the status file atomically ("finished\n", ...).
  void set_status(RunStatus status);
  // Reads runs/<name>/status; Running when the file is missing.
  static RunStatus read_status(const std::filesystem::path& run_path);

 private:
  RunDirectory(std::filesystem::path path, std::string name, bool resuming, int lock_fd);
  std::filesystem::path path_;
  std::string name_;
  bool resuming_ = false;
  int lock_fd_ = -1;
};

// Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename. The file is created
// with `mode` (less the umask); 0600 for a file only its owner may read (rendezvous endpoints).
void write_file_atomic(const std::filesystem::path& path, const std::string& text, unsigned mode = 0644);

}  // namespace troupe::core
