// The runs a dashboard shows: every directory under the runs root holding a log.h5 (nested ones too: sweeps and
// pipelines), each summarised from its status file, log and Slurm records. Reads live logs without disturbing the
// writer (RunLogReader opens without file locking; a read racing a flush is retried). Not a run index on disk: the
// tree is walked on every call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::dashboard {

struct RunRef {
  std::string name;           // relative to the runs root, '/'-separated: "quickstart", "sweep/lr_0.1"
  std::filesystem::path dir;  // the run directory
};

// Every run under `root` to a depth of 4 directories, sorted by name. Symlinks are not followed and checkpoints/,
// slurm/ and hidden directories are not entered. IoError naming `root` when it is not a directory.
std::vector<RunRef> find_runs(const std::filesystem::path& root);

// The run called `name` among find_runs(root): a name is looked up, never joined onto the path, so no request can
// reach outside the runs root. std::nullopt when there is no such run.
std::optional<RunRef> lookup_run(const std::filesystem::path& root, const std::string& name);

// What `troupe submit` recorded for a run: its own <run>/slurm/, or the sweep's <parent>/slurm/ with a sweep.tsv
// row naming the run (then the job is the array task "<array id>_<index>").
struct SlurmRecord {
  bool submitted = false;            // a job_id file was found
  std::filesystem::path slurm_dir;   // where it was found
  std::vector<std::string> job_ids;  // as submitted, oldest first ("1234", or "1234_2" for an array task)
  std::vector<std::string> events;   // the lines of slurm/events
  int requeues = 0;                  // events lines that say the job was requeued
  bool requeued_last = false;        // the newest such line is a requeue (the job waits to run again)
};
SlurmRecord slurm_record(const RunRef& run);

struct RunSummary {
  std::string name;
  std::string kind;                      // the config's kind: (pretrain, ppo, ...); "" when unknown
  std::string status;                    // running | finished | interrupted | failed | requeued | unknown
  std::optional<int64_t> step;           // the highest step any metric logged
  std::optional<double> wall_time;       // when that was logged, seconds since the epoch
  std::string start_time;                // the log's start_time attribute (ISO-8601 UTC)
  std::map<std::string, double> latest;  // the last value of a few key metrics
  int resumes = 0;                       // resume events in the log
  int requeues = 0;                      // Slurm requeues (0 when not a Slurm run)
  bool slurm = false;                    // submitted with `troupe submit`
  std::string error;                     // why the log could not be read ("" when it was)
};
RunSummary summarize_run(const RunRef& run);

// Up to `count` metric names worth a summary column: reward/mean, kl/mean, train/loss, eval/loss, ... when logged,
// then the first names in order.
std::vector<std::string> key_metrics(const std::vector<std::string>& names, size_t count);

// The top-level kind: of a config YAML ("" when absent or unreadable).
std::string config_kind(const std::string& yaml);

}  // namespace troupe::dashboard
