// `troupe export tensorboard`: a run log (core/run_log.h) as TensorBoard event files (core/tensorboard_writer.h),
// once or following a live run. Not the event encoding (tensorboard_writer.h) and not the command line (cli/).
//
// What lands where (one event file per export, in `out_dir`):
//   metric "train/loss"   -> scalars, tag "train/loss": one per row, with the row's step and wall time; the value as
//                            float32 simple_value (default: every TensorBoard loader shows it) or, with
//                            ScalarPrecision::kFloat64, a DT_DOUBLE tensor with plugin "scalars" (all 64 bits; the
//                            Python loader shows it, TensorBoard's default Rust data server does not).
//   table "samples"       -> text, tag "tables/samples": one string tensor per step, shape (R+1, C): a header row of
//                            column names (sorted, "step" left out), then that step's R rows. TensorBoard draws it
//                            as a table. Wall time: the newest metric row at or before the step (tables have none).
//   events                -> text, tag "events": one (2, 3) table {step, kind, message} per event, at TensorBoard
//                            step = the event's index in the log (0, 1, 2...; an event's own step can repeat or go
//                            back, which readers would take for a restart), with the event's wall time.
//   resolved config       -> text, tag "config", step 0: the YAML in a fenced code block.
// A log row rewritten after a rollback (RunLog::truncate_after on resume) is handled the way TensorFlow handles a
// restart: a SessionLog.START event at step F (the first step whose exported rows are gone) makes readers drop
// everything they hold at steps >= F, and every row at steps >= F is written again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensorboard_writer.h"

namespace troupe::core {

// What one poll (or a whole follow) wrote.
struct ExportCounts {
  int64_t scalars = 0;               // scalar events
  int64_t texts = 0;                 // text events (tables, events, config)
  int64_t restarts = 0;              // SessionLog.START purges after a rollback of the log
  std::optional<int64_t> last_step;  // the newest metric step written so far
  ExportCounts& operator+=(const ExportCounts& other);
};

// The exporter's memory of what it wrote: per series (a metric, a table, the events, the config) the step and a
// fingerprint of each unit (a metric row, a table's step, an event, the config) already in the event file.
struct ExportedUnit {
  int64_t step = 0;          // TensorBoard step
  uint64_t fingerprint = 0;  // hash of the unit's content (for tables and the config, wall time left out)
};

enum class ScalarPrecision { kFloat32, kFloat64 };

class TensorBoardExport {
 public:
  // Prepares `out_dir`: event files written by an earlier troupe export there are replaced (deleted once the new
  // file exists), any other event file makes it refuse (IoError naming the file). Writes the file header and a
  // SessionLog.START at step 0, which makes a TensorBoard still showing the earlier export drop it.
  TensorBoardExport(std::filesystem::path log_file, const std::filesystem::path& out_dir,
                    ScalarPrecision precision = ScalarPrecision::kFloat32);

  // Reads the log once and appends what is new since the last poll (everything on the first). The newest step of
  // each table is held back until a later step or `final` shows it complete (its rows arrive one by one).
  // Reads the log twice and uses the second read only if it extends the first (a read racing the run's writer can
  // be torn); up to 5 tries 50 ms apart, then IoError.
  ExportCounts poll(bool final);

  // The log's "status" attribute at the last poll: running | finished | failed | interrupted; "" if absent.
  const std::string& run_status() const { return status_; }
  const std::filesystem::path& event_file() const { return writer_.path(); }
  void close() { writer_.close(); }

 private:
  std::filesystem::path log_file_;
  ScalarPrecision precision_;
  tensorboard::EventFileWriter writer_;
  std::map<std::string, std::vector<ExportedUnit>> exported_;  // series key -> units in the file
  std::string status_;
  std::optional<int64_t> last_step_;
  size_t rollbacks_seen_ = 0;  // resume/restart events in the log at the last poll that wrote
};

// `--follow`: polls every `poll_seconds` until the run's status is no longer "running" (then one final poll), or
// `stop()` returns true (checked every 100 ms; then a final poll too). A poll that fails to read the log is reported
// through `warn` and retried at the next one. `progress` hears every poll that wrote something.
struct FollowOptions {
  double poll_seconds = 2.0;                          // between polls; > 0
  std::function<bool()> stop;                         // e.g. core::stop_requested (SIGINT/SIGTERM)
  std::function<void(const ExportCounts&)> progress;  // per poll with new data (may be empty)
  std::function<void(const std::string&)> warn;       // a failed poll's message (may be empty)
};
ExportCounts follow_run(TensorBoardExport& exporter, const FollowOptions& options);

// True for the statuses after which a run's log no longer changes (until a resume): finished, failed, interrupted.
bool run_status_is_final(const std::string& status);

}  // namespace troupe::core
