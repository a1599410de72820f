// Implementation of dashboard/run_catalog.h.
#include "dashboard/run_catalog.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>

#include "cluster/run_progress.h"
#include "cluster/submit.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "dashboard/log_access.h"

namespace fs = std::filesystem;

namespace troupe::dashboard {
namespace {

constexpr int kMaxDepth = 4;

bool skipped_dir(const fs::path& dir) {
  const std::string n = dir.filename().string();
  return n.empty() || n[0] == '.' || n == "checkpoints" || n == "slurm";
}

void walk(const fs::path& root, const fs::path& dir, int depth, std::vector<RunRef>& out) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "log.h5", ec) && dir != root)
    out.push_back({fs::relative(dir, root, ec).generic_string(), dir});
  if (depth >= kMaxDepth) return;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_directory(ec) || skipped_dir(it->path())) continue;
    walk(root, it->path(), depth + 1, out);
  }
}

// The sweep.tsv row (index) that names run directory `name`, or "" when none does.
std::string sweep_index(const fs::path& tsv, const std::string& name) {
  std::ifstream in(tsv);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const size_t end = line.find('\t', tab + 1);
    const std::string run = line.substr(tab + 1, end == std::string::npos ? std::string::npos : end - tab - 1);
    if (fs::path(run).filename().string() == name) return line.substr(0, tab);
  }
  return "";
}

void read_requeues(SlurmRecord& r) {
  r.events = cluster::read_events(r.slurm_dir);
  for (const auto& line : r.events) {
    const bool requeue = line.find("requeueing job") != std::string::npos;
    r.requeues += requeue ? 1 : 0;
    if (line.find("troupe") != std::string::npos || requeue) r.requeued_last = requeue;
  }
}

}  // namespace

std::vector<RunRef> find_runs(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw IoError(root.string() + ": no such runs directory");
  std::vector<RunRef> out;
  walk(root, root, 0, out);
  std::sort(out.begin(), out.end(), [](const RunRef& a, const RunRef& b) { return a.name < b.name; });
  return out;
}

std::optional<RunRef> lookup_run(const fs::path& root, const std::string& name) {
  for (auto& run : find_runs(root))
    if (run.name == name) return run;
  return std::nullopt;
}

SlurmRecord slurm_record(const RunRef& run) {
  SlurmRecord r;
  if (fs::exists(run.dir / "slurm" / "job_id")) {
    r.slurm_dir = run.dir / "slurm";
    r.job_ids = cluster::read_job_ids(r.slurm_dir);
  } else if (const fs::path parent = run.dir.parent_path() / "slurm"; fs::exists(parent / "sweep.tsv")) {
    const std::string index = sweep_index(parent / "sweep.tsv", run.dir.filename().string());
    if (index.empty()) return r;
    r.slurm_dir = parent;
    for (const auto& id : cluster::read_job_ids(parent)) r.job_ids.push_back(id + "_" + index);
  }
  r.submitted = !r.job_ids.empty();
  if (r.submitted) read_requeues(r);
  return r;
}

std::vector<std::string> key_metrics(const std::vector<std::string>& names, size_t count) {
  static const char* const kPreferred[] = {"reward/mean", "kl/mean",          "train/loss",        "eval/loss",
                                           "loss",        "eval/reward_mean", "actor/policy_loss", "critic/value_loss"};
  std::vector<std::string> out;
  auto add = [&](const std::string& n) {
    if (out.size() < count && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const char* p : kPreferred)
    if (std::find(names.begin(), names.end(), p) != names.end()) add(p);
  for (const auto& n : names)
    if (n.rfind("time/", 0) != 0) add(n);
  return out;
}

std::string config_kind(const std::string& yaml) {
  try {
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsMap() && root["kind"] && root["kind"].IsScalar()) return root["kind"].as<std::string>();
  } catch (const YAML::Exception&) {
  }
  return "";
}

RunSummary summarize_run(const RunRef& run) {
  RunSummary s;
  s.name = run.name;
  const cluster::RunProgress p = cluster::read_run_progress(run.dir);
  s.status = p.status.empty() ? "unknown" : p.status;
  s.step = p.step;
  s.wall_time = p.wall_time;
  s.resumes = p.resumes;
  s.error = p.error;
  const SlurmRecord slurm = slurm_record(run);
  s.slurm = slurm.submitted;
  s.requeues = slurm.requeues;
  if (slurm.requeued_last && s.status != "finished" && s.status != "failed") s.status = "requeued";
  try {
    with_log(run.dir / "log.h5", [&](const core::RunLogReader& log) {
      s.kind = config_kind(log.attribute("config").value_or(""));
      s.start_time = log.attribute("start_time").value_or("");
      for (const auto& name : key_metrics(log.metric_names(), 4)) {
        const int64_t n = log.metric_length(name);
        if (n > 0) s.latest[name] = log.metric(name, n - 1).values.back();
      }
    });
  } catch (const Error& e) {
    s.error = e.what();
  }
  return s;
}

}  // namespace troupe::dashboard
