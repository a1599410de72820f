// Implementation of cluster/slurm_client.h.
#include "cluster/slurm_client.h"

#include <set>
#include <sstream>

#include "core/errors.h"
#include "core/runtime.h"

namespace troupe::cluster {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

}  // namespace

fs::path slurm_program(const std::string& name) {
  if (auto p = core::find_on_path(name)) return *p;
  throw IoError(name +
                " not found on PATH: install slurm-client (scripts/install-deps.sh installs it with "
                "slurm-wlm), or run where Slurm's commands are available");
}

core::CommandOutput run_slurm(const std::string& name, const std::vector<std::string>& args,
                              std::chrono::seconds timeout, const fs::path& cwd) {
  core::SubprocessOptions options;
  options.argv = {slurm_program(name).string()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.cwd = cwd;
  return core::run_captured(std::move(options), timeout);
}

std::string sbatch_submit(const fs::path& script, const fs::path& cwd) {
  const auto r = run_slurm("sbatch", {"--parsable", script.string()}, std::chrono::seconds(60), cwd);
  if (r.status != 0)
    throw IoError("sbatch " + script.string() + " failed (exit " + std::to_string(r.status) +
                  "): " + trim(r.err + r.out));
  // --parsable prints "<jobid>" or "<jobid>;<cluster>", possibly after warnings on other lines.
  std::istringstream lines(r.out);
  std::string line, id;
  while (std::getline(lines, line)) {
    line = trim(line.substr(0, line.find(';')));
    if (!line.empty() && line.find_first_not_of("0123456789") == std::string::npos) id = line;
  }
  if (id.empty()) throw IoError("sbatch printed no job id: " + trim(r.out + r.err));
  return id;
}

std::vector<JobState> parse_job_states(const std::string& text, const std::string& source) {
  std::vector<JobState> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (trim(line).empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '|')) f.push_back(trim(field));
    if (f.size() < 2 || f[0].empty()) continue;
    JobState s;
    s.id = f[0];
    s.state = f[1].substr(0, f[1].find(' '));
    if (f.size() > 2) s.elapsed = f[2];
    if (f.size() > 3) s.reason = f[3];
    s.source = source;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<JobState> job_states(const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  const std::string list = join(ids, ",");
  std::vector<JobState> states;
  // squeue fails for the whole list when one id is unknown: ask per id then.
  auto r = run_slurm("squeue", {"--noheader", "--array", "--states=all", "--jobs=" + list, "--format=%i|%T|%M|%R"});
  if (r.status == 0) {
    states = parse_job_states(r.out, "squeue");
  } else {
    for (const auto& id : ids) {
      auto one = run_slurm("squeue", {"--noheader", "--array", "--states=all", "--jobs=" + id, "--format=%i|%T|%M|%R"});
      if (one.status == 0) {
        auto s = parse_job_states(one.out, "squeue");
        states.insert(states.end(), s.begin(), s.end());
      }
    }
  }
  std::set<std::string> known;
  for (const auto& s : states) known.insert(s.id.substr(0, s.id.find('_')));
  std::vector<std::string> missing;
  for (const auto& id : ids)
    if (!known.count(id)) missing.push_back(id);
  if (missing.empty() || !core::find_on_path("sacct")) return states;
  auto acct = run_slurm("sacct", {"--noheader", "--parsable2", "--allocations", "--jobs=" + join(missing, ","),
                                  "--format=JobID,State,Elapsed,NodeList"});
  if (acct.status == 0) {
    auto s = parse_job_states(acct.out, "sacct");
    states.insert(states.end(), s.begin(), s.end());
  }
  return states;
}

void scancel(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  auto r = run_slurm("scancel", ids);
  if (r.status != 0)
    throw IoError("scancel " + join(ids, " ") + " failed (exit " + std::to_string(r.status) +
                  "): " + trim(r.err + r.out));
}

}  // namespace troupe::cluster
