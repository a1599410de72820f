// How far a run got, read from its directory (status file) and log.h5 (newest logged step, events): what
// `troupe status` and a local sweep's summary table show. Reads a live run's log without locking it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace troupe::cluster {

struct RunProgress {
  bool exists = false;              // the run directory exists
  std::string status;               // the status file: running | finished | interrupted | failed; "" if absent
  std::optional<int64_t> step;      // the highest step any metric logged
  std::optional<double> wall_time;  // when that row was logged, seconds since the Unix epoch
  std::string last_event;           // "<kind>: <message>" of the newest event
  std::string finish_message;       // message of the newest finished event ("" if none)
  int resumes = 0;                  // resume events: how often the run continued from a checkpoint
  std::string error;                // why log.h5 could not be read ("" when it was, or when there is none yet)
};

// Reads `run` (a run directory). Never throws for a missing or unreadable log: `error` says what went wrong.
RunProgress read_run_progress(const std::filesystem::path& run);

// "2024-05-01 12:00:03 UTC (42 s ago)" for a wall time in seconds since the epoch.
std::string describe_wall_time(double wall_time);

}  // namespace troupe::cluster
