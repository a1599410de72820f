// Process runtime facts that need no torch: hardware threads, CPU features, paths, host name, time stamps, the
// reference Python. The torch half (ATen threads, the libtorch build and its backends) is core/torch_runtime.h.
// Not a config: see core/run_config.h.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

int hardware_threads();

// The absolute path of `name` found on $PATH (or `name` itself when it contains a '/' and is executable).
std::optional<std::filesystem::path> find_on_path(const std::string& name);

// The absolute path of this process's executable (/proc/self/exe): what spawned workers, stages and jobs run.
// IoError when it cannot be read.
std::filesystem::path current_executable();

// x86 feature flags of interest (avx2, fma, avx512f, avx512_bf16, avx512_vnni, amx...).
std::vector<std::string> cpu_features();
std::string cpu_model();

std::string hostname();

// The Python with torch and the reference packages (the project's .venv): $TROUPE_PYTHON when set, else the
// interpreter configured at build time.
std::string reference_python();
// `t` in UTC, formatted with strftime's `format`.
std::string format_utc(std::chrono::system_clock::time_point t, const char* format);
// Current UTC time as ISO-8601 ("2026-11-23T12:00:00Z").
std::string utc_timestamp();

}  // namespace troupe::core
