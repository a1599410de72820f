// Implementation of core/runtime.h: dlsym into OpenBLAS, /proc/cpuinfo, dl_iterate_phdr.
#include "core/runtime.h"

#include <ATen/Parallel.h>
#include <H5public.h>
#include <dlfcn.h>
#include <link.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/errors.h"

namespace troupe::core {

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

int set_threads(int n) {
  const int threads = n > 0 ? n : hardware_threads();
  at::set_num_threads(threads);
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  return threads;
}

namespace {

int collect_library(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name && *info->dlpi_name) out->emplace_back(info->dlpi_name);
  return 0;
}

std::vector<std::string> loaded_libraries() {
  std::vector<std::string> libs;
  dl_iterate_phdr(collect_library, &libs);
  return libs;
}

}  // namespace

BlasInfo blas_info() {
  BlasInfo info;
  for (const auto& lib : loaded_libraries()) {
    auto base = std::filesystem::path(lib).filename().string();
    if (base.rfind("libblas.so", 0) == 0 || base.rfind("libopenblas", 0) == 0 || base.rfind("libmkl_rt", 0) == 0) {
      std::error_code ec;
      auto resolved = std::filesystem::canonical(lib, ec);
      info.library = ec ? lib : resolved.string();
      break;
    }
  }
  using StrFn = char* (*)();
  using IntFn = int (*)();
  if (auto cfg = reinterpret_cast<StrFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.name = "OpenBLAS";
    info.config = cfg();
    if (auto core = reinterpret_cast<StrFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) info.core = core();
    if (auto n = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) info.threads = n();
  } else if (dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) {
    info.name = "MKL";
  } else if (info.library.find("/blas/") != std::string::npos || info.library.find("libblas.so") != std::string::npos) {
    info.name = "reference BLAS";
  } else {
    info.name = "unknown";
  }
  return info;
}

std::vector<std::string> cpu_features() {
  static const std::vector<std::string> kInteresting = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
                                                        "avx512bw", "avx512vl", "avx512_bf16", "avx512_vnni",
                                                        "avx512_fp16", "amx_bf16", "amx_tile"};
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream ss(line.substr(line.find(':') + 1));
    std::vector<std::string> flags((std::istream_iterator<std::string>(ss)), std::istream_iterator<std::string>());
    std::vector<std::string> found;
    for (const auto& f : kInteresting)
      if (std::find(flags.begin(), flags.end(), f) != flags.end()) found.push_back(f);
    return found;
  }
  return {};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::map<std::string, std::string> core_library_versions() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return {
      {"libtorch", TORCH_VERSION},
      {"hdf5", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel)},
  };
}

std::string hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf)) != 0) return "unknown";
  return buf;
}

std::string format_utc(std::chrono::system_clock::time_point t, const char* format) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), format, &tm);
  return std::string(buf, n);
}

std::string utc_timestamp() { return format_utc(std::chrono::system_clock::now(), "%Y-%m-%dT%H:%M:%SZ"); }

std::optional<std::filesystem::path> find_on_path(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return std::filesystem::absolute(name);
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      std::error_code ec;
      if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return std::filesystem::absolute(candidate);
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::filesystem::path current_executable() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("cannot read /proc/self/exe: " + ec.message());
  return p;
}

}  // namespace troupe::core
