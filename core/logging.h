// Console logging (spdlog) for a process, optionally mirrored to a run's troupe.log.
// Not the metrics log: scalar metrics go to the HDF5 run log (core/run_log.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace troupe::core {

// Configures the default spdlog logger: stderr (coloured on a terminal) plus, when
// `file` is given, an appending file sink. `level` is trace|debug|info|warn|error.
// `tag` prefixes each line (e.g. "actor:1") so interleaved worker output stays readable.
void init_logging(const std::string& level, const std::optional<std::filesystem::path>& file = std::nullopt,
                  const std::string& tag = "");

// Flushes the file sink (called before exiting on errors so nothing is lost).
void flush_logging();

}  // namespace troupe::core
