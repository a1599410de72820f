// `troupe log RUN`: summarise a run's log.h5 (metadata, metrics, tables, events), or print
// one metric as CSV. Reads the log without locking, so it works on a live run.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/run_log.h"

namespace troupe::cli {

namespace {

struct LogArgs {
  std::string run;
  std::string metric;
  bool config = false;
  int events = 20;
};

void print_summary(const core::RunLogReader& log, int max_events) {
  for (const auto& [key, value] : log.attributes())
    if (key != "config") std::cout << fmt::format("{:<22}{}\n", key, value);
  std::cout << fmt::format("\n{:<28}{:>8}{:>10}{:>10}{:>16}\n", "metric", "rows", "first", "last", "last value");
  for (const auto& name : log.metric_names()) {
    auto m = log.metric(name);
    if (m.steps.empty()) {
      std::cout << fmt::format("{:<28}{:>8}\n", name, 0);
      continue;
    }
    std::cout << fmt::format("{:<28}{:>8}{:>10}{:>10}{:>16.6g}\n", name, m.steps.size(), m.steps.front(),
                             m.steps.back(), m.values.back());
  }
  for (const auto& name : log.table_names()) {
    auto t = log.table(name);
    std::cout << fmt::format("\ntable {}: {} rows, columns:", name, t["step"].size());
    for (const auto& [col, values] : t) std::cout << " " << col;
    std::cout << "\n";
  }
  auto events = log.events();
  std::cout << fmt::format("\nevents ({} total, last {}):\n", events.size(),
                           std::min<size_t>(events.size(), max_events));
  const size_t first = events.size() > static_cast<size_t>(max_events) ? events.size() - max_events : 0;
  for (size_t i = first; i < events.size(); ++i)
    std::cout << fmt::format("  step {:>6}  {:<12} {}\n", events[i].step, events[i].kind, events[i].message);
}

}  // namespace

void add_log_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("log", "Summarise a run's HDF5 log, or print one metric as CSV");
  auto args = std::make_shared<LogArgs>();
  cmd->add_option("run", args->run, "run directory (runs/<name>) or a log.h5 file")->required();
  cmd->add_option("--metric", args->metric, "print this metric as CSV (step,value,wall_time)");
  cmd->add_flag("--config", args->config, "print the resolved config stored in the log");
  cmd->add_option("--events", args->events, "how many of the latest events to list")->check(CLI::NonNegativeNumber);
  cmd->callback([args, &exit_code] {
    core::RunLogReader log(core::run_log_path(args->run));
    if (args->config) {
      std::cout << log.config_yaml();
    } else if (!args->metric.empty()) {
      auto m = log.metric(args->metric);
      std::cout << "step,value,wall_time\n";
      for (size_t i = 0; i < m.steps.size(); ++i)
        std::cout << fmt::format("{},{:.17g},{:.6f}\n", m.steps[i], m.values[i], m.wall_time[i]);
    } else {
      print_summary(log, args->events);
    }
    exit_code = 0;
  });
}

}  // namespace troupe::cli
