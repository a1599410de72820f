// Implementation of core/tensorboard_export.h: the log read into series of units, each unit compared with what the
// event file already holds, and only the difference written (after a SessionLog.START when rows were rolled back).
#include "core/tensorboard_export.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "core/errors.h"
#include "core/run_log.h"
#include "core/runtime.h"

namespace troupe::core {

namespace {

constexpr int kReadTries = 5;
constexpr auto kReadRetryGap = std::chrono::milliseconds(50);
constexpr auto kStopCheck = std::chrono::milliseconds(100);

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// FNV-1a, 64 bits: a stable fingerprint of a unit's bytes (collisions would only hide a rewritten row).
uint64_t fnv1a(std::string_view bytes, uint64_t hash = 14695981039346656037ull) {
  for (char c : bytes) hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return hash;
}

template <typename T>
std::string_view raw_bytes(const T& value) {
  return {reinterpret_cast<const char*>(&value), sizeof(T)};
}

uint64_t fingerprint_strings(int64_t step, const std::vector<std::string>& parts) {
  uint64_t h = fnv1a(raw_bytes(step));
  for (const auto& p : parts) h = fnv1a(p, fnv1a(raw_bytes(p.size()), h));  // length first: no ambiguity
  return h;
}

// One stream of units under one key: a metric's rows, a table's steps, the events, the config.
struct Series {
  std::vector<int64_t> steps;                 // TensorBoard step of each unit
  std::vector<uint64_t> fingerprints;         // one per unit
  size_t ready = 0;                           // units that may be written now (a prefix)
  bool scalar = false;                        // counts as scalars (else texts)
  std::function<std::string(size_t)> encode;  // the Event bytes of unit i
  bool last_may_grow = false;                 // a table: its newest step can gain rows between two reads
};

// "```yaml\n...\n```" with a fence longer than any run of backticks in the text (CommonMark's rule).
std::string fenced_yaml(const std::string& yaml) {
  size_t longest = 0, run = 0;
  for (char c : yaml) longest = std::max(longest, run = (c == '`') ? run + 1 : 0);
  const std::string fence(std::max<size_t>(3, longest + 1), '`');
  return fence + "yaml\n" + yaml + (yaml.empty() || yaml.back() == '\n' ? "" : "\n") + fence;
}

}  // namespace

namespace detail {

struct LogSnapshot {
  using Table = std::map<std::string, std::vector<std::string>>;  // column -> values, plus "step"
  std::string config;
  std::string status;
  std::map<std::string, MetricSeries> metrics;
  std::map<std::string, Table> tables;
  std::vector<LogEvent> events;

  static LogSnapshot read(const std::filesystem::path& file) {
    RunLogReader log(file);
    LogSnapshot s;
    s.config = log.attribute("config").value_or("");
    s.status = log.attribute("status").value_or("");
    for (const auto& name : log.metric_names()) s.metrics.emplace(name, log.metric(name));
    for (const auto& name : log.table_names()) s.tables.emplace(name, log.table(name));
    s.events = log.events();
    return s;
  }

  // The newest metric row at or before `step`: the wall time a table row (which has none) is shown with.
  double wall_time_at(int64_t step) const {
    double best = 0;
    for (const auto& [name, m] : metrics) {
      const auto it = std::upper_bound(m.steps.begin(), m.steps.end(), step);
      if (it != m.steps.begin()) best = std::max(best, m.wall_time[(it - m.steps.begin()) - 1]);
    }
    return best > 0 ? best : earliest_wall_time();
  }

  double earliest_wall_time() const {
    double t = std::numeric_limits<double>::infinity();
    for (const auto& e : events) t = std::min(t, e.wall_time);
    for (const auto& [name, m] : metrics)
      if (!m.wall_time.empty()) t = std::min(t, m.wall_time.front());
    return std::isfinite(t) ? t : 0.0;
  }
};

}  // namespace detail

namespace {

using Snapshot = detail::LogSnapshot;

void check_metric_name(const std::string& name) {
  if (name == "config" || name == "events" || name.rfind("tables/", 0) == 0)
    throw DataError("metric '" + name + "' would share a TensorBoard tag with the exported config, events or " +
                    "tables (config, events, tables/<name>); rename it to export this log");
}

Series metric_series(const std::string& name, const MetricSeries& m, ScalarPrecision precision) {
  Series s;
  s.scalar = true;
  s.steps = m.steps;
  for (size_t i = 0; i < m.steps.size(); ++i)
    s.fingerprints.push_back(
        fnv1a(raw_bytes(m.wall_time[i]), fnv1a(raw_bytes(m.values[i]), fnv1a(raw_bytes(m.steps[i])))));
  s.ready = s.steps.size();
  const auto encode =
      precision == ScalarPrecision::kFloat64 ? tensorboard::double_scalar_event : tensorboard::scalar_event;
  s.encode = [&name, &m, encode](size_t i) { return encode(name, m.steps[i], m.wall_time[i], m.values[i]); };
  return s;
}

// A table's rows grouped by step: units are the distinct steps, each a (R+1, C) text tensor.
Series table_series(const std::string& name, const Snapshot::Table& table, const Snapshot& snap, bool final) {
  std::vector<std::string> columns;
  for (const auto& [column, values] : table)
    if (column != "step") columns.push_back(column);
  const auto& step_text = table.at("step");
  auto groups = std::make_shared<std::vector<std::pair<size_t, size_t>>>();  // [first, last) row of each step
  Series s;
  for (size_t row = 0; row < step_text.size(); ++row) {
    const int64_t step = std::stoll(step_text[row]);
    if (s.steps.empty() || s.steps.back() != step) {
      s.steps.push_back(step);
      groups->push_back({row, row});
    }
    groups->back().second = row + 1;
  }
  auto cells_of = [&table, columns, groups](size_t unit) {
    std::vector<std::string> cells = columns;
    for (size_t row = (*groups)[unit].first; row < (*groups)[unit].second; ++row)
      for (const auto& column : columns) cells.push_back(table.at(column)[row]);
    return cells;
  };
  for (size_t unit = 0; unit < s.steps.size(); ++unit)
    s.fingerprints.push_back(fingerprint_strings(s.steps[unit], cells_of(unit)));
  s.ready = final || s.steps.empty() ? s.steps.size() : s.steps.size() - 1;
  s.last_may_grow = true;
  s.encode = [name, &snap, groups, cells_of, steps = s.steps, width = static_cast<int64_t>(columns.size())](size_t u) {
    const int64_t rows = static_cast<int64_t>((*groups)[u].second - (*groups)[u].first) + 1;
    return tensorboard::text_event("tables/" + name, steps[u], snap.wall_time_at(steps[u]),
                                   tensorboard::TextTensor{{rows, width}, cells_of(u)});
  };
  return s;
}

Series event_series(const std::vector<LogEvent>& events) {
  Series s;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    s.steps.push_back(static_cast<int64_t>(i));
    s.fingerprints.push_back(fingerprint_strings(
        static_cast<int64_t>(i), {std::to_string(e.step), e.kind, e.message, std::string(raw_bytes(e.wall_time))}));
  }
  s.ready = s.steps.size();
  s.encode = [&events](size_t i) {
    const auto& e = events[i];
    return tensorboard::text_event(
        "events", static_cast<int64_t>(i), e.wall_time,
        tensorboard::TextTensor{{2, 3}, {"step", "kind", "message", std::to_string(e.step), e.kind, e.message}});
  };
  return s;
}

Series config_series(const Snapshot& snap) {
  Series s;
  if (snap.config.empty()) return s;
  s.steps = {0};
  s.fingerprints = {fingerprint_strings(0, {snap.config})};
  s.ready = 1;
  s.encode = [&snap](size_t) {
    return tensorboard::text_event("config", 0, snap.earliest_wall_time(),
                                   tensorboard::TextTensor{{}, {fenced_yaml(snap.config)}});
  };
  return s;
}

std::map<std::string, Series> all_series(const Snapshot& snap, bool final, ScalarPrecision precision) {
  std::map<std::string, Series> out;
  for (const auto& [name, m] : snap.metrics) {
    check_metric_name(name);
    out.emplace("metric:" + name, metric_series(name, m, precision));
  }
  for (const auto& [name, t] : snap.tables) out.emplace("table:" + name, table_series(name, t, snap, final));
  out.emplace("events", event_series(snap.events));
  out.emplace("config", config_series(snap));
  return out;
}

// Units [0, k) of `current` are the ones the file already holds unchanged.
size_t common_prefix(const std::vector<ExportedUnit>& exported, const Series& current) {
  size_t k = 0;
  while (k < exported.size() && k < current.ready && exported[k].step == current.steps[k] &&
         exported[k].fingerprint == current.fingerprints[k])
    ++k;
  return k;
}

}  // namespace

ExportCounts& ExportCounts::operator+=(const ExportCounts& other) {
  scalars += other.scalars;
  texts += other.texts;
  restarts += other.restarts;
  if (other.last_step) last_step = other.last_step;
  return *this;
}

TensorBoardExport::TensorBoardExport(std::filesystem::path log_file, const std::filesystem::path& out_dir,
                                     ScalarPrecision precision)
    : log_file_(std::move(log_file)), precision_(precision), writer_([&] {
        const auto earlier = tensorboard::event_files_in(out_dir);
        for (const auto& file : earlier)
          if (!tensorboard::written_by_troupe(file))
            throw IoError(file.string() + " is an event file that troupe did not write; export into another " +
                          "directory (--out) or remove it");
        return tensorboard::EventFileWriter(out_dir, now_seconds(), hostname());
      }()) {
  writer_.write(tensorboard::session_start_event(now_seconds(), 0));
  writer_.flush();
  for (const auto& file : tensorboard::event_files_in(out_dir)) {
    std::error_code ec;
    if (file != writer_.path() && tensorboard::written_by_troupe(file) && !std::filesystem::remove(file, ec) && ec)
      throw IoError("cannot replace the earlier export " + file.string() + ": " + ec.message());
  }
}

namespace {

// Appends to `writer` what `series` holds beyond `exported` (after a SessionLog.START if exported units are gone or
// changed), and makes `exported` what the file now holds.
ExportCounts write_difference(tensorboard::EventFileWriter& writer_,
                              std::map<std::string, std::vector<ExportedUnit>>& exported_,
                              std::optional<int64_t>& last_step_, const std::map<std::string, Series>& series) {
  // F: the smallest step among exported units that are gone or changed; readers must drop everything from there.
  std::optional<int64_t> purge_from;
  std::map<std::string, size_t> kept;
  for (const auto& [key, units] : exported_) {
    const auto it = series.find(key);
    const size_t k = it == series.end() ? 0 : common_prefix(units, it->second);
    kept[key] = k;
    for (size_t i = k; i < units.size(); ++i) purge_from = std::min(purge_from.value_or(units[i].step), units[i].step);
  }
  ExportCounts counts;
  if (purge_from) {
    writer_.write(tensorboard::session_start_event(now_seconds(), *purge_from));
    counts.restarts = 1;
  }
  for (const auto& [key, s] : series) {
    const size_t k = kept.count(key) ? kept[key] : 0;
    auto& units = exported_[key];
    units.clear();
    for (size_t i = 0; i < s.ready; ++i) {
      if (i >= k || (purge_from && s.steps[i] >= *purge_from)) {
        writer_.write(s.encode(i));
        ++(s.scalar ? counts.scalars : counts.texts);
        if (s.scalar) last_step_ = std::max(last_step_.value_or(s.steps[i]), s.steps[i]);
      }
      units.push_back({s.steps[i], s.fingerprints[i]});
    }
  }
  std::erase_if(exported_, [](const auto& entry) { return entry.second.empty(); });
  writer_.flush();
  counts.last_step = last_step_;
  return counts;
}

// Whether `later`, read just after `earlier`, starts with every unit `earlier` held (a table's newest step may have
// grown). A run's log only grows between two reads milliseconds apart, unless one read raced the writer's flush (no
// SWMR: such a read can fail, and in one test run a poll came back with rows that the next poll found different,
// purging from a step the rollback never touched) or the run rolled back just then.
bool extends(const std::map<std::string, Series>& earlier, const std::map<std::string, Series>& later) {
  for (const auto& [key, a] : earlier) {
    const auto it = later.find(key);
    const size_t n = a.last_may_grow && !a.steps.empty() ? a.steps.size() - 1 : a.steps.size();
    if (it == later.end() || it->second.fingerprints.size() < n) return false;
    if (!std::equal(a.fingerprints.begin(), a.fingerprints.begin() + static_cast<std::ptrdiff_t>(n),
                    it->second.fingerprints.begin()))
      return false;
  }
  return true;
}

// The resume and restart events of the log: each marks a rollback (RunLog::truncate_after) just before it.
size_t rollback_events(const detail::LogSnapshot& snapshot) {
  return static_cast<size_t>(std::count_if(snapshot.events.begin(), snapshot.events.end(), [](const LogEvent& e) {
    return e.kind == "resume" || e.kind == "restart";
  }));
}

// Whether any unit already in the file is gone from `series` or different there (what write_difference purges).
bool changes_exported(const std::map<std::string, std::vector<ExportedUnit>>& exported,
                      const std::map<std::string, Series>& series) {
  for (const auto& [key, units] : exported) {
    const auto it = series.find(key);
    if (it == series.end() || common_prefix(units, it->second) < units.size()) return true;
  }
  return false;
}

}  // namespace

ExportCounts TensorBoardExport::poll(bool final) {
  std::string why;
  for (int attempt = 1; attempt <= kReadTries; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(kReadRetryGap);
    try {
      const auto first = detail::LogSnapshot::read(log_file_);
      const auto second = detail::LogSnapshot::read(log_file_);
      const auto series = all_series(second, final, precision_);
      if (!extends(all_series(first, final, precision_), series)) {
        why = "two consecutive reads disagree";
        continue;
      }
      // Rows only vanish when a resumed or restarted run rolls its log back, and it then logs a resume or restart
      // event (core/run_session.cpp, rlhf/controller.cpp) right after truncating. Exported rows that seem gone or
      // changed without a new such event are a read that raced the writer (or the moment between the truncation
      // and its event): this poll writes nothing, and a later one sees the log settled.
      const size_t rollbacks = rollback_events(second);
      if (changes_exported(exported_, series) && rollbacks <= rollbacks_seen_) {
        why = "exported rows changed without a resume or restart event";
        continue;
      }
      rollbacks_seen_ = rollbacks;
      status_ = second.status;
      return write_difference(writer_, exported_, last_step_, series);
    } catch (const IoError& e) {
      why = e.what();  // a read racing the writer's flush (core/run_log.h)
    }
  }
  throw IoError("cannot read a consistent " + log_file_.string() + " in " + std::to_string(kReadTries) +
                " tries (the run's writer is busy): " + why);
}

bool run_status_is_final(const std::string& status) {
  return status == "finished" || status == "failed" || status == "interrupted";
}

ExportCounts follow_run(TensorBoardExport& exporter, const FollowOptions& options) {
  if (!(options.poll_seconds > 0)) throw ConfigError("--poll-seconds must be > 0");
  const auto stopped = [&] { return options.stop && options.stop(); };
  ExportCounts total;
  for (;;) {
    try {
      const ExportCounts counts = exporter.poll(/*final=*/false);
      total += counts;
      if ((counts.scalars > 0 || counts.texts > 0) && options.progress) options.progress(counts);
      if (run_status_is_final(exporter.run_status())) break;
    } catch (const IoError& e) {
      if (options.warn) options.warn(e.what());
    }
    const auto wake = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.poll_seconds);
    while (!stopped() && std::chrono::steady_clock::now() < wake) std::this_thread::sleep_for(kStopCheck);
    if (stopped()) break;
  }
  const ExportCounts last = exporter.poll(/*final=*/true);
  total += last;
  if ((last.scalars > 0 || last.texts > 0) && options.progress) options.progress(last);
  return total;
}

}  // namespace troupe::core
