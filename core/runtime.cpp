// Implementation of core/runtime.h: /proc/cpuinfo, $PATH, host name, time stamps.
#include "core/runtime.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "core/build_info.h"
#include "core/errors.h"

namespace troupe::core {

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::vector<std::string> cpu_features() {
  static const std::vector<std::string> kInteresting = {
      "sse4_2",   "avx",         "avx2",        "fma",         "f16c",     "avx512f", "avx512bw",
      "avx512vl", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_tile"};
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

std::string reference_python() {
  if (const char* env = std::getenv("TROUPE_PYTHON"); env && *env) return env;
  return default_python();
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
      if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
        return std::filesystem::absolute(candidate);
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
