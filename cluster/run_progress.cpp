// Implementation of cluster/run_progress.h.
#include "cluster/run_progress.h"

#include <chrono>
#include <cmath>
#include <fstream>

#include "core/run_log.h"
#include "core/runtime.h"

namespace troupe::cluster {
namespace fs = std::filesystem;

namespace {

void read_log(const fs::path& file, RunProgress& p) {
  core::RunLogReader log(file);
  for (const auto& name : log.metric_names()) {
    const auto m = log.metric(name, log.metric_length(name) - 1);  // the last row only (a live log grows long)
    if (m.steps.empty()) continue;
    if (!p.step || m.steps.back() > *p.step || (m.steps.back() == *p.step && m.wall_time.back() > *p.wall_time)) {
      p.step = m.steps.back();
      p.wall_time = m.wall_time.back();
    }
  }
  const auto events = log.events();
  for (const auto& e : events) {
    if (e.kind == "resume") ++p.resumes;
    if (e.kind == "finished") p.finish_message = e.message;
  }
  if (!events.empty()) p.last_event = events.back().kind + ": " + events.back().message;
}

}  // namespace

RunProgress read_run_progress(const fs::path& run) {
  RunProgress p;
  std::error_code ec;
  p.exists = fs::is_directory(run, ec);
  if (!p.exists) return p;
  if (std::ifstream in(run / "status"); in) in >> p.status;
  const fs::path log = run / "log.h5";
  if (!fs::exists(log, ec)) return p;
  // A read racing the writer's flush can fail (see RunLogReader); a few tries make that rare.
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      RunProgress fresh = p;
      read_log(log, fresh);
      return fresh;
    } catch (const std::exception& e) {
      p.error = e.what();
    }
  }
  return p;
}

std::string describe_wall_time(double wall_time) {
  const auto t = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(wall_time)));
  const double ago = std::chrono::duration<double>(std::chrono::system_clock::now() - t).count();
  return core::format_utc(t, "%Y-%m-%d %H:%M:%S UTC") + " (" + std::to_string(std::lround(std::max(0.0, ago))) +
         " s ago)";
}

}  // namespace troupe::cluster
