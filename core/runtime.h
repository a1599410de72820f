// Process runtime facts and knobs: ATen's thread count, the libtorch build and the backends it uses, CPU
// features, library versions, the reference Python. Not a config: see core/run_config.h.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

// Sets intra-op threads for ATen (and so for MKL and oneDNN, which libtorch configures from it).
// n == 0 means "all cores". Returns the count applied.
int set_threads(int n);
int hardware_threads();

// The absolute path of `name` found on $PATH (or `name` itself when it contains a '/' and is executable).
std::optional<std::filesystem::path> find_on_path(const std::string& name);

// The absolute path of this process's executable (/proc/self/exe): what spawned workers, stages and jobs run.
// IoError when it cannot be read.
std::filesystem::path current_executable();

// The libtorch this process runs on, and the backends it dispatches to.
struct TorchInfo {
  std::string version;         // TORCH_VERSION, e.g. "2.15.0"
  bool cuda_build = false;     // libtorch was built with CUDA (the PyPI wheel is)
  std::string cuda_runtime;    // CUDA runtime version libtorch was built against ("13.2"), "" for CPU builds
  int cuda_devices = 0;        // visible GPUs (0 without a GPU or driver)
  bool cudnn = false;          // cuDNN usable (needs a GPU)
  std::string blas;            // "MKL 2024.2 ..." or what at::show_config() names
  std::string onednn;          // oneDNN (MKL-DNN) version, "" when absent
  std::string openmp;          // OpenMP version libtorch was built with
  std::string cpu_capability;  // the vector ISA ATen's CPU kernels dispatch to ("AVX512", "AVX2", "DEFAULT")
};
TorchInfo torch_info();

// x86 feature flags of interest (avx2, fma, avx512f, avx512_bf16, avx512_vnni, amx...).
std::vector<std::string> cpu_features();
std::string cpu_model();

// Versions of the libraries this binary uses that core can see (libtorch, HDF5, yaml-cpp...).
std::map<std::string, std::string> core_library_versions();

std::string hostname();

// The Python with torch and the reference packages (the project's .venv): $TROUPE_PYTHON when set, else the
// interpreter configured at build time.
std::string reference_python();
// `t` in UTC, formatted with strftime's `format`.
std::string format_utc(std::chrono::system_clock::time_point t, const char* format);
// Current UTC time as ISO-8601 ("2026-11-23T12:00:00Z").
std::string utc_timestamp();

}  // namespace troupe::core
