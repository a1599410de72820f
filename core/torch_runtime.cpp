// Implementation of core/torch_runtime.h.
#include "core/torch_runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <H5public.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/runtime.h"

namespace troupe::core {

int set_threads(int n) {
  const int threads = n > 0 ? n : hardware_threads();
  at::set_num_threads(threads);
  return threads;
}

namespace {

// The value after "key=" in at::show_config()'s comma-separated build settings ("" when absent).
std::string config_setting(const std::string& config, const std::string& key) {
  const auto at = config.find(key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 1;
  return config.substr(start, config.find_first_of(",\n", start) - start);
}

// The text after `prefix` on the first line of `config` that contains it, trimmed ("" when absent).
std::string config_line(const std::string& config, const std::string& prefix) {
  const auto at = config.find(prefix);
  if (at == std::string::npos) return "";
  const auto start = at + prefix.size();
  return config.substr(start, config.find('\n', start) - start);
}

}  // namespace

TorchInfo torch_info() {
  TorchInfo info;
  info.version = TORCH_VERSION;
  const std::string config = at::show_config();
  info.cuda_build = config_setting(config, "USE_CUDA") == "1" || config_setting(config, "USE_CUDA") == "ON";
  info.cuda_runtime = config_setting(config, "CUDA_VERSION");
  info.cuda_devices = info.cuda_build ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.cudnn = info.cuda_devices > 0 && torch::cuda::cudnn_is_available();
  const std::string blas = config_setting(config, "BLAS_INFO");
  if (blas == "mkl") {
    info.blas = "MKL " + at::get_mkl_version();
  } else {
    info.blas = blas.empty() ? "unknown" : blas;
  }
  const auto mkl_line = config_line(config, "- Intel(R) oneAPI Math Kernel Library ");
  if (blas == "mkl" && !mkl_line.empty()) info.blas = "MKL " + mkl_line.substr(0, mkl_line.find(" for "));
  const auto dnnl = config_line(config, "- Intel(R) MKL-DNN ");
  info.onednn = dnnl.substr(0, dnnl.find(' '));
  info.openmp = config_line(config, "- OpenMP ");
  info.cpu_capability = at::get_cpu_capability();
  return info;
}

std::map<std::string, std::string> core_library_versions() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return {
      {"libtorch", TORCH_VERSION},
      {"hdf5", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel)},
  };
}

}  // namespace troupe::core
