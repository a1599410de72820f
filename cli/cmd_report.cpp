// `troupe report RUN [RUN...]`: compare runs. Prints a table of final metric values, writes CSVs of every
// logged point (--csv) and has scripts/plot_report.py (matplotlib + h5py in the project venv) draw one PNG
// line plot per metric, every run a line. Not a plotting library: C++ picks and checks the metrics, Python draws.
//
// The script is found at run time, since the CLI runs from its build tree and has no install step:
// $TROUPE_SOURCE_DIR/scripts/plot_report.py if that variable is set, else scripts/plot_report.py in the nearest
// ancestor directory of the executable (build/cli/troupe -> ../../scripts/plot_report.py).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "core/runtime.h"
#include "core/subprocess.h"

namespace troupe::cli {

namespace {
namespace fs = std::filesystem;

struct ReportArgs {
  std::vector<std::string> runs;     // run directories or log.h5 files
  std::vector<std::string> metrics;  // empty: choose_metrics()
  std::string out = "report";        // output directory for CSVs and PNGs
  std::string title;                 // prefix of every plot title
  std::string python = core::reference_python();
  bool csv = false;
  bool no_plot = false;
};

// One run as the report sees it: the series of the reported metrics (absent if the run lacks one).
struct Run {
  std::string label;  // legend / column name: the run directory's name
  fs::path log;
  std::string status;
  int64_t last_step = -1;  // largest step of any metric in the log
  std::set<std::string> names;
  std::map<std::string, core::MetricSeries> series;
};

// Metrics worth a first look, in this order: PPO, then LM/DPO training, then the quickstart regression.
const std::vector<std::string> kPreferredMetrics = {
    "reward/mean", "kl/mean",  "actor/policy_loss",      "critic/value_loss",    "train/loss",
    "eval/loss",   "eval/mse", "train/rewards_accuracy", "train/rewards_margin", "eval/accuracy"};
constexpr size_t kMaxDefaultMetrics = 6;

std::vector<Run> open_runs(const std::vector<std::string>& args) {
  std::vector<Run> runs;
  std::map<std::string, int> label_count;
  for (const auto& arg : args) {
    Run r;
    r.log = core::run_log_path(arg);
    r.label = fs::absolute(r.log).lexically_normal().parent_path().filename().string();
    ++label_count[r.label];
    runs.push_back(std::move(r));
  }
  // Two runs named alike (runs/x, other/runs/x) are told apart by the argument as given.
  for (size_t i = 0; i < runs.size(); ++i)
    if (label_count[runs[i].label] > 1) runs[i].label = args[i];
  return runs;
}

// Defaults: the preferred metrics every run logs; else those any run logs (runs of different kinds); else the
// first few metrics every run logs (time/* last).
std::vector<std::string> choose_metrics(const std::vector<Run>& runs) {
  std::set<std::string> common = runs.front().names, any;
  for (const auto& r : runs) {
    std::set<std::string> both;
    std::set_intersection(common.begin(), common.end(), r.names.begin(), r.names.end(),
                          std::inserter(both, both.end()));
    common = std::move(both);
    any.insert(r.names.begin(), r.names.end());
  }
  for (const auto* pool : {&common, &any}) {
    std::vector<std::string> chosen;
    for (const auto& m : kPreferredMetrics)
      if (pool->count(m) && chosen.size() < kMaxDefaultMetrics) chosen.push_back(m);
    if (!chosen.empty()) return chosen;
  }
  std::vector<std::string> rest(common.begin(), common.end());
  std::stable_partition(rest.begin(), rest.end(), [](const std::string& m) { return m.rfind("time/", 0) != 0; });
  rest.resize(std::min(rest.size(), kMaxDefaultMetrics));
  if (rest.empty()) throw ConfigError("report: no metric is logged by every run; choose some with --metrics");
  return rest;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : sep) + i;
  return s;
}

// Reads status, names and the series of `metrics`; a metric no run has is an error naming what there is.
void load(std::vector<Run>& runs, std::vector<std::string>& metrics) {
  std::set<std::string> available;
  for (auto& r : runs) {
    core::RunLogReader reader(r.log);
    r.status = reader.attribute("status").value_or("unknown");
    for (const auto& name : reader.metric_names()) {
      r.names.insert(name);
      available.insert(name);
      const auto m = reader.metric(name);
      if (!m.steps.empty()) r.last_step = std::max(r.last_step, m.steps.back());
      r.series[name] = m;  // trimmed to the reported metrics below
    }
  }
  if (metrics.empty()) metrics = choose_metrics(runs);
  for (const auto& m : metrics)
    if (!available.count(m))
      throw ConfigError(fmt::format("report: metric '{}' is not logged by any of the runs; available: {}", m,
                                    join({available.begin(), available.end()}, ", ")));
  const std::set<std::string> wanted(metrics.begin(), metrics.end());
  for (auto& r : runs) {
    for (auto it = r.series.begin(); it != r.series.end();)
      it = wanted.count(it->first) ? std::next(it) : r.series.erase(it);
    for (const auto& m : metrics)
      if (!r.series.count(m)) std::cerr << fmt::format("report: note: run {} has no metric '{}'\n", r.label, m);
  }
}

// Metrics as rows, runs as columns: long metric names stay readable however many runs there are.
void print_table(const std::vector<Run>& runs, const std::vector<std::string>& metrics) {
  size_t name_w = std::string("last step").size();
  for (const auto& m : metrics) name_w = std::max(name_w, m.size());
  std::vector<size_t> col_w;
  std::string header = fmt::format("{:<{}}", "", name_w);
  for (const auto& r : runs) {
    col_w.push_back(std::max<size_t>(12, r.label.size()) + 2);
    header += fmt::format("{:>{}}", r.label, col_w.back());
  }
  std::cout << header << "\n";
  auto row = [&](const std::string& name, auto cell) {
    std::string line = fmt::format("{:<{}}", name, name_w);
    for (size_t i = 0; i < runs.size(); ++i) line += fmt::format("{:>{}}", cell(runs[i]), col_w[i]);
    std::cout << line << "\n";
  };
  row("status", [](const Run& r) { return r.status; });
  row("last step", [](const Run& r) { return r.last_step < 0 ? std::string("-") : std::to_string(r.last_step); });
  for (const auto& m : metrics)
    row(m, [&](const Run& r) {
      const auto it = r.series.find(m);
      return it == r.series.end() || it->second.values.empty() ? std::string("-")
                                                               : fmt::format("{:.6g}", it->second.values.back());
    });
}

// RFC 4180 quoting, only where a field needs it.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::ofstream open_out(const fs::path& p) {
  std::ofstream out(p);
  if (!out) throw IoError(p.string() + ": cannot write: " + std::strerror(errno));
  return out;
}

void close_out(std::ofstream& out, const fs::path& p) {
  out.close();
  if (!out) throw IoError(p.string() + ": write failed");
  std::cout << "wrote " << p.string() << "\n";
}

// report.csv: every logged point (long format); final.csv: the last point of each run x metric.
void write_csvs(const std::vector<Run>& runs, const std::vector<std::string>& metrics, const fs::path& dir) {
  const fs::path all_path = dir / "report.csv", final_path = dir / "final.csv";
  auto all = open_out(all_path);
  auto last = open_out(final_path);
  all << "run,metric,step,value,wall_time\n";
  last << "run,status,metric,step,value\n";
  for (const auto& r : runs)
    for (const auto& m : metrics) {
      const auto it = r.series.find(m);
      if (it == r.series.end()) continue;
      const auto& s = it->second;
      const std::string prefix = csv_field(r.label) + "," + csv_field(m) + ",";
      for (size_t i = 0; i < s.steps.size(); ++i)
        all << prefix << fmt::format("{},{:.17g},{:.6f}\n", s.steps[i], s.values[i], s.wall_time[i]);
      if (!s.steps.empty())
        last << csv_field(r.label) << "," << csv_field(r.status) << "," << csv_field(m) << ","
             << fmt::format("{},{:.17g}\n", s.steps.back(), s.values.back());
    }
  close_out(all, all_path);
  close_out(last, final_path);
}

fs::path find_plot_script() {
  const fs::path rel = fs::path("scripts") / "plot_report.py";
  if (const char* src = std::getenv("TROUPE_SOURCE_DIR"); src != nullptr && *src != '\0') {
    const fs::path p = fs::path(src) / rel;
    if (!fs::is_regular_file(p)) throw IoError(p.string() + ": not found (TROUPE_SOURCE_DIR is set to " + src + ")");
    return p;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("cannot resolve /proc/self/exe: " + ec.message() + "; set TROUPE_SOURCE_DIR");
  for (fs::path dir = exe.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_regular_file(dir / rel)) return dir / rel;
    if (dir == dir.root_path()) break;
  }
  throw IoError("cannot find " + rel.string() + " in any parent directory of " + exe.string() +
                "; set TROUPE_SOURCE_DIR to the Troupe source tree");
}

// Runs argv to completion with our stdout/stderr (the script prints the paths it writes); returns its exit status.
int run_child(const std::vector<std::string>& argv) {
  std::cout.flush();
  core::SubprocessOptions o;
  o.argv = argv;
  core::Subprocess child(std::move(o));
  while (true)
    if (const auto status = child.wait_for(std::chrono::seconds(1))) return *status;
}

constexpr const char* kInstallHint =
    "run `make deps` (matplotlib and h5py in the project venv, scripts/requirements.txt)";
constexpr int kScriptMissingModule = 3;  // plot_report.py's exit status when an import fails

void plot(const ReportArgs& a, const std::vector<Run>& runs, const std::vector<std::string>& metrics) {
  if (::access(a.python.c_str(), X_OK) != 0)
    throw IoError(fmt::format("report: cannot plot: {} not found; {}, or pass --no-plot", a.python, kInstallHint));
  std::vector<std::string> argv = {a.python, find_plot_script().string(), "--out", a.out};
  if (!a.title.empty()) argv.insert(argv.end(), {"--title", a.title});
  for (const auto& m : metrics) argv.insert(argv.end(), {"--metric", m});
  for (const auto& r : runs) argv.insert(argv.end(), {"--label", r.label});
  argv.push_back("--");
  for (const auto& r : runs) argv.push_back(r.log.string());
  const int rc = run_child(argv);
  if (rc == kScriptMissingModule)
    throw IoError(fmt::format("report: cannot plot: {} cannot import matplotlib or h5py; {}", a.python, kInstallHint));
  if (rc != 0) throw IoError(fmt::format("report: plotting failed: {} exited with status {}", argv[1], rc));
}

}  // namespace

void add_report_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("report", "Compare runs: final-value table, CSVs (--csv) and PNG plots per metric");
  auto args = std::make_shared<ReportArgs>();
  cmd->add_option("runs", args->runs, "run directories (runs/<name>) or log.h5 files")->required();
  cmd->add_option("--metrics", args->metrics, "comma-separated metrics to report (default: a few common ones)")
      ->delimiter(',');
  cmd->add_option("--out", args->out, "directory for report.csv, final.csv and <metric>.png")->capture_default_str();
  cmd->add_flag("--csv", args->csv, "write report.csv (every point) and final.csv (last points)");
  cmd->add_flag("--no-plot", args->no_plot, "skip the PNG plots (no Python needed)");
  cmd->add_option("--title", args->title, "prefix for every plot title");
  cmd->add_option("--python", args->python, "python with matplotlib and h5py")->capture_default_str();
  cmd->callback([args, &exit_code] {
    std::vector<Run> runs = open_runs(args->runs);
    std::vector<std::string> metrics = args->metrics;
    load(runs, metrics);
    print_table(runs, metrics);
    if (args->csv || !args->no_plot) fs::create_directories(args->out);
    if (args->csv) write_csvs(runs, metrics, args->out);  // before plotting, so a missing matplotlib loses nothing
    if (!args->no_plot) plot(*args, runs, metrics);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
