// The torch half of the process runtime: ATen's thread count, the libtorch build and the backends it uses, and
// the library versions core links (libtorch, HDF5). Torch-free facts are core/runtime.h.
#pragma once

#include <map>
#include <string>

namespace troupe::core {

// Sets intra-op threads for ATen (and so for MKL and oneDNN, which libtorch configures from it).
// n == 0 means "all cores". Returns the count applied.
int set_threads(int n);
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

// Versions of the libraries this binary uses that core can see (libtorch, HDF5, yaml-cpp...).
std::map<std::string, std::string> core_library_versions();

}  // namespace troupe::core
