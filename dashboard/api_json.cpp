// Implementation of dashboard/api_json.h.
#include "dashboard/api_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/run_log.h"
#include "dashboard/config_diff.h"
#include "dashboard/downsample.h"
#include "dashboard/log_access.h"

namespace troupe::dashboard {
namespace {

using nlohmann::json;

int64_t int_param(const HttpRequest& r, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  const auto it = r.query.find(key);
  if (it == r.query.end() || it->second.empty()) return fallback;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc() || end != it->second.data() + it->second.size() || v < lo || v > hi)
    throw HttpError(400, fmt::format("parameter '{}': expected an integer in [{}, {}], got '{}'", key, lo, hi,
                                     it->second.substr(0, 40)));
  return v;
}

double double_param(const HttpRequest& r, const std::string& key, double fallback) {
  const auto it = r.query.find(key);
  if (it == r.query.end() || it->second.empty()) return fallback;
  double v = 0;
  const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc() || end != it->second.data() + it->second.size() || std::isnan(v))
    throw HttpError(400, fmt::format("parameter '{}': expected a number, got '{}'", key, it->second.substr(0, 40)));
  return v;
}

std::string required(const HttpRequest& r, const std::string& key) {
  const std::string v = r.param(key);
  if (v.empty()) throw HttpError(400, "parameter '" + key + "' is required");
  return v;
}

json events_json(const std::vector<core::LogEvent>& events) {
  json out = json::array();
  for (const auto& e : events)
    out.push_back({{"step", e.step}, {"wall_time", e.wall_time}, {"kind", e.kind}, {"message", e.message}});
  return out;
}

json summary_json(const RunSummary& s) {
  json j = {{"name", s.name},     {"kind", s.kind},       {"status", s.status},     {"start_time", s.start_time},
            {"latest", s.latest}, {"resumes", s.resumes}, {"requeues", s.requeues}, {"slurm", s.slurm},
            {"error", s.error}};
  j["step"] = s.step ? json(*s.step) : json(nullptr);
  j["wall_time"] = s.wall_time ? json(*s.wall_time) : json(nullptr);
  return j;
}

// The selected rows of a series as parallel arrays.
json series_arrays(const core::MetricSeries& m, size_t begin, size_t end, size_t max_points) {
  const std::vector<double> values(m.values.begin() + static_cast<std::ptrdiff_t>(begin),
                                   m.values.begin() + static_cast<std::ptrdiff_t>(end));
  const std::vector<size_t> keep = minmax_indices(values, max_points);
  json steps = json::array(), vals = json::array(), wall = json::array();
  for (size_t i : keep) {
    steps.push_back(m.steps[begin + i]);
    vals.push_back(std::isfinite(values[i]) ? json(values[i]) : json(nullptr));  // JSON has no NaN/Inf
    wall.push_back(m.wall_time[begin + i]);
  }
  return {{"steps", steps}, {"values", vals}, {"wall", wall}, {"downsampled", keep.size() < values.size()}};
}

}  // namespace

RunRef find_run_param(const std::filesystem::path& root, const HttpRequest& request, const std::string& key) {
  const std::string name = required(request, key);
  auto run = lookup_run(root, name);
  if (!run) throw HttpError(404, "no run '" + name.substr(0, 200) + "' under " + root.string());
  return *run;
}

json runs_json(const std::filesystem::path& root) {
  json runs = json::array();
  for (const auto& run : find_runs(root)) runs.push_back(summary_json(summarize_run(run)));
  return {{"root", root.string()}, {"runs", runs}};
}

json run_json(const std::filesystem::path& root, const HttpRequest& request) {
  const RunRef run = find_run_param(root, request, "run");
  json out = summary_json(summarize_run(run));
  with_log(run.dir / "log.h5", [&](const core::RunLogReader& log) {
    json attributes = json::object(), metrics = json::array(), tables = json::array();
    for (const auto& [key, value] : log.attributes())
      if (key != "config") attributes[key] = value;
    for (const auto& name : log.metric_names()) metrics.push_back({{"name", name}, {"rows", log.metric_length(name)}});
    for (const auto& name : log.table_names()) tables.push_back(name);
    out["config"] = log.attribute("config").value_or("");
    out["attributes"] = attributes;
    out["metrics"] = metrics;
    out["tables"] = tables;
    out["events"] = events_json(log.events());
  });
  return out;
}

json series_json(const std::filesystem::path& root, const HttpRequest& request, size_t default_points,
                 size_t max_points) {
  const RunRef run = find_run_param(root, request, "run");
  const std::string metric = required(request, "metric");
  const auto points = static_cast<size_t>(
      int_param(request, "max_points", static_cast<int64_t>(default_points), 4, static_cast<int64_t>(max_points)));
  const int64_t from = int_param(request, "from", 0, 0, std::numeric_limits<int64_t>::max());
  const std::string x = request.param("x", "step");
  if (x != "step" && x != "wall") throw HttpError(400, "parameter 'x': expected step or wall, got '" + x + "'");
  const bool ranged = request.query.count("x0") != 0 || request.query.count("x1") != 0;
  const double x0 = double_param(request, "x0", -std::numeric_limits<double>::infinity());
  const double x1 = double_param(request, "x1", std::numeric_limits<double>::infinity());
  json out;
  with_log(run.dir / "log.h5", [&](const core::RunLogReader& log) {
    const auto names = log.metric_names();
    if (std::find(names.begin(), names.end(), metric) == names.end())
      throw HttpError(404, "run '" + run.name + "' has no metric '" + metric.substr(0, 200) + "'");
    const int64_t rows = log.metric_length(metric);
    const bool reset = !ranged && from > rows;  // the log was truncated (a resume) below what the client holds
    core::MetricSeries m = log.metric(metric, ranged || reset ? 0 : from);
    size_t begin = 0, end = m.values.size();
    if (ranged) {
      std::vector<double> xs(m.steps.size());
      for (size_t i = 0; i < xs.size(); ++i) xs[i] = x == "step" ? static_cast<double>(m.steps[i]) : m.wall_time[i];
      const RowRange r = rows_between(xs, x0, x1);
      begin = r.begin;
      end = r.end;
    }
    out = series_arrays(m, begin, end, points);
    out["rows"] = rows;
    out["from"] = ranged ? static_cast<int64_t>(begin) : (reset ? 0 : from);
    out["reset"] = reset;
    out["ranged"] = ranged;
  });
  out["run"] = run.name;
  out["metric"] = metric;
  return out;
}

json diff_json(const std::filesystem::path& root, const HttpRequest& request) {
  const RunRef a = find_run_param(root, request, "a"), b = find_run_param(root, request, "b");
  std::string ya, yb;
  with_log(a.dir / "log.h5", [&](const core::RunLogReader& log) { ya = log.attribute("config").value_or(""); });
  with_log(b.dir / "log.h5", [&](const core::RunLogReader& log) { yb = log.attribute("config").value_or(""); });
  const ConfigDiff d = diff_configs(flatten_yaml(ya, "run " + a.name), flatten_yaml(yb, "run " + b.name));
  json diffs = json::array();
  for (const auto& e : d.differences)
    diffs.push_back({{"key", e.key}, {"a", e.a ? json(*e.a) : json(nullptr)}, {"b", e.b ? json(*e.b) : json(nullptr)}});
  return {{"a", a.name}, {"b", b.name}, {"differences", diffs}, {"equal", d.equal}};
}

json table_json(const std::filesystem::path& root, const HttpRequest& request) {
  const RunRef run = find_run_param(root, request, "run");
  const std::string table = required(request, "table");
  const auto last = static_cast<size_t>(int_param(request, "last", 200, 1, 100000));
  json out;
  with_log(run.dir / "log.h5", [&](const core::RunLogReader& log) {
    const auto names = log.table_names();
    if (std::find(names.begin(), names.end(), table) == names.end())
      throw HttpError(404, "run '" + run.name + "' has no table '" + table.substr(0, 200) + "'");
    const auto columns = log.table(table);
    const size_t total = columns.at("step").size();
    const size_t first = total > last ? total - last : 0;
    json cols = json::object();
    for (const auto& [name, values] : columns) {
      const size_t n = std::min(values.size(), total);
      cols[name] = std::vector<std::string>(values.begin() + static_cast<std::ptrdiff_t>(std::min(first, n)),
                                            values.begin() + static_cast<std::ptrdiff_t>(n));
    }
    out = {{"run", run.name}, {"table", table}, {"columns", cols}, {"total", total}, {"rows", total - first}};
  });
  return out;
}

}  // namespace troupe::dashboard
