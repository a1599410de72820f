// `troupe submit CONFIG [overrides] [--dry-run]`, `troupe status RUN_DIR` and `troupe cancel RUN_DIR`: a run or a
// sweep as a Slurm job or job array, its state next to what its log says, and cancelling it. A thin layer over
// troupe::cluster; nothing here talks to Slurm except through cluster/slurm_client.h.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cluster/launch_plan.h"
#include "cluster/run_progress.h"
#include "cluster/slurm_client.h"
#include "cluster/submit.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "experiments/registry.h"

namespace troupe::cli {
namespace fs = std::filesystem;

namespace {

// A path for messages: relative to the working directory when it is below it.
std::string shown(const fs::path& p) {
  const fs::path rel = p.lexically_relative(fs::current_path());
  return rel.empty() || rel.native().rfind("..", 0) == 0 ? p.string() : rel.string();
}

void print_submitted(const cluster::LaunchPlan& plan, const cluster::PreparedSubmission& prepared,
                     const std::string& id) {
  const std::string run = shown(plan.root);
  const std::string slurm = shown(prepared.slurm_dir);
  if (plan.sweep) {
    std::cout << fmt::format("submitted job array {} ({} runs) for sweep {}\n", id, plan.targets.size(), run);
    for (const auto& t : plan.targets) std::cout << fmt::format("  task {:>3}  {}\n", t.index, shown(t.path));
    std::cout << fmt::format("  output:  {}/slurm-{}_<task>.out\n", slurm, id);
  } else {
    std::cout << fmt::format("submitted job {} for run {}\n", id, run);
    std::cout << fmt::format("  output:  {}/slurm-{}.out\n", slurm, id);
  }
  std::cout << fmt::format("  script:  {}/job.sbatch\n", slurm);
  std::cout << fmt::format("  follow:  troupe status {}\n", run);
  std::cout << fmt::format("  cancel:  troupe cancel {}\n", run);
}

bool active_state(const std::string& state) {
  static const std::set<std::string> done = {"COMPLETED", "FAILED",    "CANCELLED",     "TIMEOUT",
                                             "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE",
                                             "PREEMPTED", "REVOKED",   "SPECIAL_EXIT"};
  return !state.empty() && !done.count(state);
}

// Slurm's view of the recorded jobs; a missing squeue is reported, not fatal (the log part still helps).
std::vector<cluster::JobState> query_states(const std::vector<std::string>& ids, std::string& problem) {
  try {
    return cluster::job_states(ids);
  } catch (const Error& e) {
    problem = e.what();
    return {};
  }
}

std::string describe_job(const cluster::JobState& s) {
  std::string text = s.state;
  if (!s.elapsed.empty()) text += ", " + s.elapsed + " elapsed";
  if (!s.reason.empty() && s.reason != "None") text += s.state == "RUNNING" ? ", on " + s.reason : ", " + s.reason;
  return text + " (" + s.source + ")";
}

std::string describe_progress(const cluster::RunProgress& p) {
  if (!p.exists) return "no run directory yet";
  if (!p.error.empty()) return "log.h5 unreadable: " + p.error;
  if (!p.step) return p.status.empty() ? "nothing logged yet" : "nothing logged yet (" + p.status + ")";
  std::string text = "step " + std::to_string(*p.step) + " at " + cluster::describe_wall_time(*p.wall_time);
  if (p.resumes > 0) text += fmt::format("; resumed {} time{}", p.resumes, p.resumes == 1 ? "" : "s");
  return text;
}

int count_requeues(const std::vector<std::string>& events) {
  int n = 0;
  for (const auto& e : events) n += e.find("requeueing job") != std::string::npos;
  return n;
}

void print_single_status(const fs::path& run, const std::vector<std::string>& ids,
                         const std::vector<cluster::JobState>& states) {
  const auto p = cluster::read_run_progress(run);
  std::cout << fmt::format("{:<10}{} ({})\n", "run", shown(run), p.status.empty() ? "not started" : p.status);
  for (const auto& id : ids) {
    std::string text = "unknown to Slurm now (squeue forgets finished jobs after MinJobAge; no sacct record)";
    for (const auto& s : states)
      if (s.id == id) text = describe_job(s);
    std::cout << fmt::format("{:<10}{}: {}\n", "job", id, text);
  }
  std::cout << fmt::format("{:<10}{}\n", "log", describe_progress(p));
  if (!p.last_event.empty()) std::cout << fmt::format("{:<10}{}\n", "event", p.last_event);
  const auto events = cluster::read_events(run / "slurm");
  std::cout << fmt::format("{:<10}{} ({})\n", "requeues", count_requeues(events), shown(run / "slurm" / "events"));
  if (!ids.empty())
    std::cout << fmt::format("{:<10}{}\n", "output", shown(run / "slurm" / ("slurm-" + ids.back() + ".out")));
}

// Rows of sweep.tsv: index and run directory name (the element label).
std::vector<std::pair<std::string, std::string>> read_sweep_rows(const fs::path& tsv) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::ifstream in(tsv);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    std::string index, run;
    std::getline(ss, index, '\t');
    std::getline(ss, run, '\t');
    rows.emplace_back(index, fs::path(run).filename().string());
  }
  return rows;
}

void print_sweep_status(const fs::path& root, const std::vector<std::string>& ids,
                        const std::vector<cluster::JobState>& states) {
  const auto rows = read_sweep_rows(root / "slurm" / "sweep.tsv");
  const std::string array = ids.empty() ? "" : ids.back();
  std::cout << fmt::format("sweep {}: {} runs, job array {}\n", shown(root), rows.size(), array.empty() ? "-" : array);
  std::cout << fmt::format("{:>3}  {:<32} {:<34} {:<11} {}\n", "#", "run", "slurm", "status", "log");
  for (const auto& [index, label] : rows) {
    std::string job = "not in the queue";
    for (const auto& s : states)
      if (s.id == array + "_" + index) job = describe_job(s);
    // A pending array shows as one line "<id>_[0-3]" until its tasks start.
    for (const auto& s : states)
      if (job == "not in the queue" && s.id.rfind(array + "_[", 0) == 0) job = describe_job(s);
    const auto p = cluster::read_run_progress(root / label);
    std::cout << fmt::format("{:>3}  {:<32} {:<34} {:<11} {}\n", index, label, job, p.status.empty() ? "-" : p.status,
                             describe_progress(p));
  }
  std::cout << fmt::format("requeues  {} ({})\n", count_requeues(cluster::read_events(root / "slurm")),
                           shown(root / "slurm" / "events"));
}

fs::path existing_dir(const std::string& arg) {
  fs::path p = fs::absolute(arg).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (!fs::is_directory(p)) throw IoError(arg + ": no such run directory");
  return p;
}

}  // namespace

void add_submit_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string file;
    std::vector<std::string> overrides;
    bool dry_run = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("submit",
                                 "Submit a run (or a sweep, as one job array) to Slurm; see the config's "
                                 "cluster: section");
  cmd->add_option("config", args->file, "YAML config file")->required();
  cmd->add_option("overrides", args->overrides, "dotted overrides, e.g. cluster.time=04:00:00 run.name=big");
  cmd->add_flag("--dry-run", args->dry_run, "print the batch script (and sweep.tsv) and submit nothing");
  cmd->callback([args, &exit_code] {
    const auto plan = cluster::plan_launch(args->file, args->overrides, [](const core::ConfigNode& t) {
      experiments::find_kind(t).show(t, false, false);
    });
    const auto prepared = cluster::prepare_submission(plan, core::current_executable(), fs::current_path());
    if (args->dry_run) {
      cluster::check_targets(plan, /*remove=*/false);
      std::cout << prepared.script;
      if (plan.sweep) {
        std::cout << "\n# " << shown(prepared.slurm_dir / "sweep.tsv") << ":\n";
        std::istringstream rows(prepared.tsv);
        for (std::string row; std::getline(rows, row);)
          std::cout << (row.rfind("#", 0) == 0 ? "" : "# ") << row << "\n";
      }
      std::cout << "# dry run: nothing written, nothing submitted (the script would be "
                << shown(prepared.slurm_dir / "job.sbatch") << ")\n";
      exit_code = 0;
      return;
    }
    cluster::slurm_program("sbatch");  // fail before touching any run directory
    cluster::check_targets(plan, /*remove=*/true);
    const std::string id = cluster::submit(prepared, fs::current_path());
    print_submitted(plan, prepared, id);
    exit_code = 0;
  });
}

void add_status_command(CLI::App& app, int& exit_code) {
  auto run = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("status", "Slurm state of a submitted run or sweep next to its last logged step");
  cmd->add_option("run", *run, "run directory (runs/<name>) of a run or sweep submitted with troupe submit")
      ->required();
  cmd->callback([run, &exit_code] {
    const fs::path root = existing_dir(*run);
    const auto ids = cluster::read_job_ids(root / "slurm");
    std::string problem;
    const auto states = ids.empty() ? std::vector<cluster::JobState>{} : query_states(ids, problem);
    if (ids.empty()) std::cout << "no Slurm jobs recorded (" << shown(root / "slurm" / "job_id") << " is missing)\n";
    if (!problem.empty()) std::cout << "slurm: " << problem << "\n";
    if (fs::exists(root / "slurm" / "sweep.tsv"))
      print_sweep_status(root, ids, states);
    else
      print_single_status(root, ids, states);
    exit_code = 0;
  });
}

void add_cancel_command(CLI::App& app, int& exit_code) {
  auto run = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("cancel", "Cancel the Slurm jobs of a submitted run or sweep (scancel)");
  cmd->add_option("run", *run, "run directory (runs/<name>) of a run or sweep submitted with troupe submit")
      ->required();
  cmd->callback([run, &exit_code] {
    const fs::path root = existing_dir(*run);
    const auto ids = cluster::read_job_ids(root / "slurm");
    if (ids.empty())
      throw IoError("no Slurm jobs recorded for " + *run + " (" + (root / "slurm" / "job_id").string() +
                    " is missing)");
    // Only jobs Slurm still runs or holds: scancel fails on ids that are long gone.
    std::vector<std::string> active;
    for (const auto& s : cluster::job_states(ids)) {
      const std::string job = s.id.substr(0, s.id.find('_'));
      if (active_state(s.state) && std::find(active.begin(), active.end(), job) == active.end()) active.push_back(job);
    }
    if (active.empty()) {
      std::cout << "no job of " << shown(root) << " is pending or running (recorded: ";
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? ", " : "") << ids[i];
      std::cout << ")\n";
      exit_code = 0;
      return;
    }
    cluster::scancel(active);
    std::string list;
    for (const auto& id : active) list += (list.empty() ? "" : " ") + id;
    cluster::append_event(root / "slurm", "cancel requested for job " + list);
    std::cout << "cancelled job " << list << " of " << shown(root) << "\n";
    exit_code = 0;
  });
}

}  // namespace troupe::cli
