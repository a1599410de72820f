// Process runtime facts and knobs: thread counts for ATen and OpenBLAS, which BLAS is
// really loaded, CPU features, library versions. Not a config: see core/run_config.h.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

// Sets intra-op threads for ATen and for OpenBLAS (libtorch's setting does not reach
// OpenBLAS). n == 0 means "all cores". Returns the count applied.
int set_threads(int n);
int hardware_threads();

// The absolute path of `name` found on $PATH (or `name` itself when it contains a '/' and is executable).
std::optional<std::filesystem::path> find_on_path(const std::string& name);

// The absolute path of this process's executable (/proc/self/exe): what spawned workers, stages and jobs run.
// IoError when it cannot be read.
std::filesystem::path current_executable();

// The BLAS library libtorch actually calls.
struct BlasInfo {
  std::string name;     // "OpenBLAS", "reference BLAS", "MKL", or "unknown"
  std::string library;  // resolved path of the loaded libblas
  std::string config;   // openblas_get_config() when OpenBLAS
  std::string core;     // openblas_get_corename() when OpenBLAS (e.g. "Haswell", "SkylakeX")
  int threads = 0;      // openblas_get_num_threads() when OpenBLAS
};
BlasInfo blas_info();

// x86 feature flags of interest (avx2, fma, avx512f, avx512_bf16, avx512_vnni, amx...).
std::vector<std::string> cpu_features();
std::string cpu_model();

// Versions of the libraries this binary uses that core can see (libtorch, HDF5, yaml-cpp...).
std::map<std::string, std::string> core_library_versions();

std::string hostname();
// `t` in UTC, formatted with strftime's `format`.
std::string format_utc(std::chrono::system_clock::time_point t, const char* format);
// Current UTC time as ISO-8601 ("2026-11-23T12:00:00Z").
std::string utc_timestamp();

}  // namespace troupe::core
