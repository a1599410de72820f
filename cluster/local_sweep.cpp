// Implementation of cluster/local_sweep.h.
#include "cluster/local_sweep.h"

#include <fmt/format.h>

#include "cluster/run_progress.h"
#include "core/run_dir.h"
#include "core/signals.h"
#include "core/subprocess.h"

namespace troupe::cluster {
namespace fs = std::filesystem;

std::string sweep_summary(const LaunchPlan& plan, const std::vector<SweepOutcome>& outcomes) {
  std::string s = fmt::format("\nsweep {}: {} runs in {}\n", plan.name, plan.targets.size(), plan.root.string());
  s += fmt::format("{:>3}  {:<36} {:>5}  {:<11} {:>7}  {}\n", "#", "run", "exit", "status", "step", "result");
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    const auto& t = plan.targets[i];
    const SweepOutcome o = i < outcomes.size() ? outcomes[i] : SweepOutcome{};
    const RunProgress p = read_run_progress(t.path);
    const std::string exit = o.skipped ? "skip" : o.exit_code ? std::to_string(*o.exit_code) : "-";
    const std::string status = p.status.empty() ? (p.exists ? "?" : "not run") : p.status;
    const std::string step = p.step ? std::to_string(*p.step) : "-";
    const std::string result = !p.finish_message.empty() ? p.finish_message : !p.error.empty() ? p.error : p.last_event;
    s += fmt::format("{:>3}  {:<36} {:>5}  {:<11} {:>7}  {}\n", t.index, t.label, exit, status, step, result);
  }
  return s;
}

int run_sweep_locally(const LaunchPlan& plan, const fs::path& troupe, std::ostream& out) {
  std::vector<SweepOutcome> outcomes(plan.targets.size());
  int code = 0;
  for (size_t i = 0; i < plan.targets.size() && code == 0; ++i) {
    const auto& t = plan.targets[i];
    if (!plan.overwrite && fs::exists(t.path) && core::RunDirectory::read_status(t.path) == core::RunStatus::Finished) {
      out << fmt::format("sweep {}: run {}/{} {} already finished, skipped\n", plan.name, i + 1, plan.targets.size(),
                         t.label)
          << std::flush;
      outcomes[i].skipped = true;
      continue;
    }
    std::vector<std::string> argv = {troupe.string(), "run", "--no-sweep", plan.config_file.string()};
    argv.insert(argv.end(), plan.overrides.begin(), plan.overrides.end());
    argv.insert(argv.end(), t.overrides.begin(), t.overrides.end());
    out << fmt::format("sweep {}: run {}/{}: {}\n", plan.name, i + 1, plan.targets.size(), core::join_command(argv))
        << std::flush;
    outcomes[i].exit_code = core::run_foreground(argv);
    code = *outcomes[i].exit_code;
    if (code == 0 && core::stop_requested()) code = 128 + core::stop_signal();
  }
  out << sweep_summary(plan, outcomes) << std::flush;
  return code;
}

}  // namespace troupe::cluster
