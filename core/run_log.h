// The run log: one HDF5 file per run holding the resolved config, run metadata, scalar
// metrics, string tables and events, flushed after every append so it survives kill -9.
// Not a checkpoint (no tensors) and not multi-writer: only rank 0 / the controller writes.
//
// Layout of log.h5 (h5py: f.attrs["config"], f["metrics/train/loss/value"][:], ...):
//   /                      attributes: config (YAML, str), git_sha, hostname, command_line,
//                          start_time (ISO-8601 UTC), seed (int64), world_size (int32),
//                          version.<lib> (e.g. version.libtorch), and any set_attribute() keys.
//   /metrics/<name>/step       int64   (N,)  training step of each row
//   /metrics/<name>/value      float64 (N,)
//   /metrics/<name>/wall_time  float64 (N,)  seconds since the Unix epoch
//       A name with '/' ("train/loss") is a nested group /metrics/train/loss/; a metric is
//       any group holding a `value` dataset. Each metric has its own rows: a metric logged
//       at only some steps has only those rows.
//   /tables/<name>/step        int64   (R,)
//   /tables/<name>/<column>    str     (R,)  variable-length UTF-8; "" where a row had no
//       value for the column (also for rows logged before the column first appeared).
//   /events/{step int64, wall_time float64, kind str, message str}   (E,)
// HDF5 1.8 file format; every dataset is 1-D, chunked (1024 rows) and unlimited. Strings are
// variable-length UTF-8: h5py gives bytes from datasets (use .asstr()), str from attributes.
// Within one metric or table, steps never decrease (appends enforce it). After a crash, the
// columns of a metric/table may differ in length by one row; readers use the shortest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

// Written as root attributes of the log when it is created.
struct RunMetadata {
  std::string git_sha;                          // commit the binary was built from
  std::string hostname;                         // machine of rank 0
  std::string command_line;                     // argv joined by spaces
  std::string start_time;                       // ISO-8601 UTC, e.g. "2024-05-01T12:00:00Z"
  int64_t seed = 0;                             // the run's base seed
  int world_size = 1;                           // number of ranks
  std::map<std::string, std::string> versions;  // {"libtorch", "1.13.1"} -> attr version.libtorch
};

// One metric's rows, all three vectors of the same length (N).
struct MetricSeries {
  std::vector<int64_t> steps;     // (N,)
  std::vector<double> values;     // (N,)
  std::vector<double> wall_time;  // (N,) seconds since the Unix epoch
};

struct LogEvent {
  int64_t step = 0;
  double wall_time = 0;  // seconds since the Unix epoch
  std::string kind;      // e.g. "resume", "checkpoint", "nan"
  std::string message;
};

// The single writer of a run log. Every log_* call appends and then flushes the whole file
// (~17 us per append + H5Fflush here; 10,000 take 0.17 s), which is what lets every completed
// call survive a kill -9 of the writer. No fsync: a power loss can still lose the last steps.
// Throws IoError on HDF5 failures, DataError on bad names or decreasing steps.
// Movable, not copyable; not thread-safe.
class RunLog {
 public:
  // Creates `file` (throws IoError if it already exists) and writes config + metadata.
  static RunLog create(const std::filesystem::path& file, const std::string& resolved_config_yaml,
                       const RunMetadata& meta);
  // Reopens an existing log to resume an unfinished run (usually followed by truncate_after).
  static RunLog open_for_append(const std::filesystem::path& file);

  RunLog(RunLog&&) noexcept;
  RunLog& operator=(RunLog&&) noexcept;
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;
  ~RunLog();  // closes; errors on this path are swallowed (call close() to see them)

  // Appends one row (step, value, now) to each named metric. Names are '/'-separated
  // paths of non-empty segments other than ".", "step", "value" and "wall_time".
  void log_scalars(int64_t step, const std::map<std::string, double>& values);
  // Appends one row to `table` (a name without '/'); columns not given get "".
  void log_table_row(const std::string& table, int64_t step, const std::map<std::string, std::string>& columns);
  void log_event(int64_t step, const std::string& kind, const std::string& message);
  // Resume from a checkpoint at `step`: drops metric and table rows with a larger step.
  // Events are history (e.g. the crash that caused the resume) and are kept.
  void truncate_after(int64_t step);
  // Sets a string root attribute (e.g. "end_time", "status"), replacing any old value.
  void set_attribute(const std::string& key, const std::string& value);
  void set_config(const std::string& resolved_config_yaml);
  void flush();  // H5Fflush(H5F_SCOPE_GLOBAL) into the OS page cache; every log_* already does it
  void close();  // idempotent; afterwards every other call throws IoError

  const std::filesystem::path& path() const;

 private:
  struct Impl;
  explicit RunLog(std::unique_ptr<Impl> impl);
  Impl& live(const char* what);
  std::unique_ptr<Impl> impl_;
};

// Reads a run log, finished, crashed or still being written. Opens the file with HDF5 file
// locking disabled so another process's live writer does not keep it out. Reading a live log
// is best effort (no SWMR): a read racing a flush can throw IoError (about 3 in 2,000 reads
// of a writer flushing 5,000 times a second; retry). Throws IoError naming the path if the
// file is missing or not HDF5. Keeps the file open until destroyed.
// The log.h5 that a command-line argument names: a run directory (its log.h5) or the file itself. ConfigError
// naming the path when there is no such file (a bad argument, exit code 2 in the CLI).
std::filesystem::path run_log_path(const std::string& run_or_file);

class RunLogReader {
 public:
  explicit RunLogReader(const std::filesystem::path& file);
  ~RunLogReader();
  RunLogReader(RunLogReader&&) noexcept;
  RunLogReader& operator=(RunLogReader&&) noexcept;

  std::string config_yaml() const;                                     // DataError if the log has no config
  std::optional<std::string> attribute(const std::string& key) const;  // numbers as text
  std::map<std::string, std::string> attributes() const;               // every root attribute
  std::vector<std::string> metric_names() const;                       // sorted, e.g. "train/loss"
  MetricSeries metric(const std::string& name) const;                  // DataError naming file+metric if absent
  // Rows [first_row, N) of a metric (empty when first_row >= N): what a live viewer that holds N rows fetches.
  MetricSeries metric(const std::string& name, int64_t first_row) const;
  int64_t metric_length(const std::string& name) const;  // N, the complete rows of a metric (as metric() reads)
  std::vector<std::string> table_names() const;
  // column -> values (R each), plus a "step" column holding decimal strings.
  std::map<std::string, std::vector<std::string>> table(const std::string& name) const;
  std::vector<LogEvent> events() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::core
