// Implementation of core/device.h.
#include "core/device.h"

#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>

#include "core/device_spec.h"
#include "core/errors.h"

namespace troupe::core {

namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 0 && n < 1 << 20) ? static_cast<int>(n) : -1;
}

}  // namespace

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) {
    if (const int r = env_int(name); r >= 0) return r;
  }
  return 0;
}

torch::Device resolve_device(const std::string& spec, int local_rank, const std::string& key) {
  if (!valid_device_spec(spec))
    throw ConfigError(key + ": '" + spec + "' is not a device; expected auto, cpu, cuda or cuda:N");
  if (spec == "cpu") return torch::kCPU;
  const int visible = static_cast<int>(torch::cuda::device_count());
  if (spec == "auto" && visible == 0) return torch::kCPU;
  if (visible == 0)
    throw ConfigError(key + ": '" + spec + "' asks for a GPU but this process sees none (" +
                      (torch::cuda::is_available() ? "" : "no CUDA device or driver; ") +
                      "use runtime.device: auto or cpu)");
  const int index = spec == "auto" || spec == "cuda" ? local_rank % visible : cuda_index_of(spec);
  if (index >= visible)
    throw ConfigError(key + ": '" + spec + "' but only " + std::to_string(visible) + " GPU(s) are visible");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void set_deterministic(bool on) {
  if (on) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);  // cuBLAS needs a fixed workspace to be deterministic
  auto& ctx = at::globalContext();
  ctx.setDeterministicAlgorithms(on, /*warn_only=*/false);
  ctx.setDeterministicCuDNN(on);
  ctx.setBenchmarkCuDNN(false);
}

}  // namespace troupe::core
