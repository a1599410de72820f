// Implementation of cluster/submit.h.
#include "cluster/submit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "cluster/slurm_client.h"
#include "core/errors.h"
#include "core/run_dir.h"
#include "core/runtime.h"

namespace troupe::cluster {
namespace fs = std::filesystem;

namespace {

void append_line(const fs::path& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  out << line << "\n";
  if (!out) throw IoError("cannot append to " + file.string());
}

// Removes a finished run directory unless a troupe process holds its lock.
void remove_run(const fs::path& run) {
  const fs::path lock = run / ".lock";
  if (fs::exists(lock)) {
    int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
      ::close(fd);
      if (held) throw IoError("run directory " + run.string() + " is in use by a troupe process; not overwriting it");
    }
  }
  fs::remove_all(run);
}

}  // namespace

PreparedSubmission prepare_submission(const LaunchPlan& plan, const fs::path& troupe, const fs::path& submit_dir) {
  PreparedSubmission p;
  p.slurm_dir = plan.root / "slurm";
  BatchJob& job = p.job;
  job.job_name = plan.name;
  job.troupe = troupe;
  job.submit_dir = submit_dir;
  job.slurm_dir = p.slurm_dir;
  job.created = core::utc_timestamp();
  job.troupe_args = {"run"};
  if (plan.sweep) job.troupe_args.push_back("--no-sweep");
  job.troupe_args.push_back(plan.config_file.string());
  job.troupe_args.insert(job.troupe_args.end(), plan.overrides.begin(), plan.overrides.end());
  job.troupe_args.push_back("run.resume=auto");
  job.troupe_args.push_back("run.overwrite=false");
  if (plan.sweep) {
    job.array_size = static_cast<int>(plan.targets.size());
    p.tsv = sweep_tsv(plan);
  } else {
    const auto& t = plan.targets.front().overrides;
    job.troupe_args.insert(job.troupe_args.end(), t.begin(), t.end());
  }
  p.script = sbatch_script(plan.sections.cluster, job);
  return p;
}

void check_targets(const LaunchPlan& plan, bool remove) {
  for (const auto& t : plan.targets) {
    if (!fs::exists(t.path)) continue;
    if (plan.overwrite) {
      if (remove) remove_run(t.path);
    } else if (core::RunDirectory::read_status(t.path) == core::RunStatus::Finished) {
      throw ConfigError("run.name: run '" + t.run_name + "' already finished in " + t.path.string() +
                        "; pick another run.name or set run.overwrite=true");
    }
  }
  // An overwritten sweep starts with fresh Slurm records too (a single run's are inside its directory).
  if (remove && plan.overwrite && plan.sweep) fs::remove_all(plan.root / "slurm");
}

std::string submit(const PreparedSubmission& p, const fs::path& submit_dir) {
  fs::create_directories(p.slurm_dir);
  const fs::path script = p.slurm_dir / "job.sbatch";
  core::write_file_atomic(script, p.script);
  if (!p.tsv.empty()) core::write_file_atomic(p.slurm_dir / "sweep.tsv", p.tsv);
  const std::string id = sbatch_submit(script, submit_dir);
  append_line(p.slurm_dir / "job_id", id);
  append_event(p.slurm_dir, "submitted job " + id +
                                (p.job.array_size > 0 ? " (array of " + std::to_string(p.job.array_size) + ")" : ""));
  return id;
}

std::vector<std::string> read_job_ids(const fs::path& slurm_dir) {
  std::vector<std::string> ids;
  std::ifstream in(slurm_dir / "job_id");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) ids.push_back(line);
  }
  return ids;
}

void append_event(const fs::path& slurm_dir, const std::string& message) {
  append_line(slurm_dir / "events", core::utc_timestamp() + " troupe: " + message);
}

std::vector<std::string> read_events(const fs::path& slurm_dir) {
  std::vector<std::string> lines;
  std::ifstream in(slurm_dir / "events");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace troupe::cluster
