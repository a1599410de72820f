// Implementation of core/run_log.h: the writer caches one open dataset per column and appends
// a row with H5Dset_extent + a one-row hyperslab write; the reader reads whole columns.
// Not a general HDF5 wrapper: the checked primitives live in core/hdf5_check.h.
#include "core/run_log.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "core/errors.h"
#include "core/hdf5_check.h"

namespace troupe::core {
namespace fs = std::filesystem;

namespace {

// One line for a log that HDF5 cannot open, instead of HDF5's call stack: the path, the size, HDF5's own reason
// (the frame that says what is wrong with the file: a missing signature, a truncated end) and what to do.
IoError unreadable_log(const fs::path& file, const std::string& h5_message, const char* purpose) {
  // h5_fail wrote "HDF5 call failed: <expr>: f1(): d1; f2(): d2; ..." (outermost first).
  std::vector<std::string> frames;
  for (size_t at = h5_message.find("(): "); at != std::string::npos; at = h5_message.find("(): ", at + 4)) {
    const size_t end = h5_message.find("; ", at);
    frames.push_back(h5_message.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4));
  }
  std::string reason = frames.empty() ? h5_message : frames.back();
  for (const auto& f : frames)
    if (f.find("truncated") != std::string::npos || f.find("signature") != std::string::npos) reason = f;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  return IoError("run log " + file.string() + " (" +
                 (ec ? std::string("size unknown") : std::to_string(size) + " bytes") + ") cannot be opened " +
                 purpose + ": " + reason +
                 "; it is truncated, corrupt or not a Troupe log (a run's checkpoints are separate: delete the log "
                 "or restore it from a copy)");
}

constexpr hsize_t kChunkRows = 1024;  // 8 KiB per numeric chunk; one chunk touched per append
constexpr int64_t kNoStep = std::numeric_limits<int64_t>::min();
const char* const kReserved[] = {".", "step", "value", "wall_time"};

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

bool is_reserved(const std::string& segment) {
  return std::find(std::begin(kReserved), std::end(kReserved), segment) != std::end(kReserved);
}

// '/'-separated, non-empty segments, none of them reserved ("train/loss" is fine).
bool valid_metric_name(const std::string& name) {
  size_t start = 0;
  while (true) {
    size_t end = std::min(name.find('/', start), name.size());
    std::string segment = name.substr(start, end - start);
    if (segment.empty() || is_reserved(segment)) return false;
    if (end == name.size()) return true;
    start = end + 1;
  }
}

// Table and column names are single segments.
bool valid_plain_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && !is_reserved(name);
}

void require(bool ok, const std::string& what, const std::string& name) {
  if (!ok) {
    throw DataError("run log: invalid " + what + " name '" + name +
                    "' (needs non-empty '/'-free segments other than . step value wall_time)");
  }
}

H5Handle writer_access_plist() {
  H5Handle fapl{TROUPE_H5(H5Pcreate(H5P_FILE_ACCESS))};
  // The 1.8 format stores attributes densely, so a config larger than 64 KiB still fits.
  TROUPE_H5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18));
  return fapl;
}

H5Handle open_group(hid_t loc, const std::string& name) {
  return H5Handle{TROUPE_H5(H5Gopen2(loc, name.c_str(), H5P_DEFAULT))};
}

// Opens `name` if it exists, else creates it and any missing parents.
H5Handle open_or_create_group(hid_t loc, const std::string& name) {
  if (h5::path_exists(loc, name)) return open_group(loc, name);
  H5Handle lcpl{TROUPE_H5(H5Pcreate(H5P_LINK_CREATE))};
  TROUPE_H5(H5Pset_create_intermediate_group(lcpl.get(), 1));
  return H5Handle{TROUPE_H5(H5Gcreate2(loc, name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT))};
}

// One open 1-D dataset and its row count; `mem_type` is borrowed.
struct Column {
  H5Handle dset;
  hid_t mem_type = -1;
  hsize_t rows = 0;

  void append(const void* value) {
    h5::resize_column(dset.get(), rows + 1);
    h5::write_rows(dset.get(), mem_type, rows, 1, value);
    ++rows;
  }
  void truncate(hsize_t n) {
    if (n < rows) h5::resize_column(dset.get(), n);
    rows = std::min(rows, n);
  }
};

Column open_column(hid_t loc, const std::string& name, hid_t mem_type) {
  Column c{H5Handle{TROUPE_H5(H5Dopen2(loc, name.c_str(), H5P_DEFAULT))}, mem_type, 0};
  c.rows = h5::column_length(c.dset.get());
  return c;
}

Column create_column(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type) {
  return Column{h5::create_column(loc, name, file_type, 0, kChunkRows), mem_type, 0};
}

// A kill -9 between the appends of one row can leave columns one row apart; cut them all
// to the shortest so the next row lines up again.
void even_out(const std::vector<Column*>& columns) {
  hsize_t n = std::numeric_limits<hsize_t>::max();
  for (Column* c : columns) n = std::min(n, c->rows);
  for (Column* c : columns) c->truncate(n);
}

int64_t last_step(const Column& step) {
  if (step.rows == 0) return kNoStep;
  int64_t value = 0;
  hsize_t offset = step.rows - 1, count = 1;
  H5Handle file_space{TROUPE_H5(H5Dget_space(step.dset.get()))};
  TROUPE_H5(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &offset, nullptr, &count, nullptr));
  H5Handle mem_space{TROUPE_H5(H5Screate_simple(1, &count, nullptr))};
  TROUPE_H5(H5Dread(step.dset.get(), H5T_NATIVE_INT64, mem_space.get(), file_space.get(), H5P_DEFAULT, &value));
  return value;
}

// Number of leading rows with step <= `step` (steps never decrease within a column).
hsize_t rows_through(const Column& step_column, int64_t step) {
  auto steps = h5::read_int64_column(step_column.dset.get(), step_column.rows);
  return static_cast<hsize_t>(std::upper_bound(steps.begin(), steps.end(), step) - steps.begin());
}

struct MetricWriter {
  H5Handle group;
  Column step, value, wall_time;
  int64_t last = kNoStep;
  std::vector<Column*> all() { return {&step, &value, &wall_time}; }
};

struct TableWriter {
  H5Handle group;
  Column step;
  std::map<std::string, Column> columns;
  int64_t last = kNoStep;
  std::vector<Column*> all() {
    std::vector<Column*> out{&step};
    for (auto& [name, c] : columns) out.push_back(&c);
    return out;
  }
};

struct EventWriter {
  Column step, wall_time, kind, message;
  std::vector<Column*> all() { return {&step, &wall_time, &kind, &message}; }
};

void check_step_order(int64_t last, int64_t step, const std::string& what) {
  if (step < last) {
    throw DataError("run log: " + what + ": step " + std::to_string(step) + " logged after step " +
                    std::to_string(last) + " (call truncate_after when resuming)");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Writer

struct RunLog::Impl {
  fs::path path;
  H5Handle file, root, metrics_group, tables_group, events_group;
  H5Handle str_type = h5::vlen_utf8_type();
  std::map<std::string, MetricWriter> metrics;  // open datasets, so appends never reopen
  std::map<std::string, TableWriter> tables;
  EventWriter events;

  void open_groups();
  void load_metrics(hid_t group, const std::string& prefix);
  void load_tables();
  void load_events();
  MetricWriter& metric(const std::string& name);
  TableWriter& table(const std::string& name);
  Column& table_column(TableWriter& t, const std::string& column);
  void flush() { TROUPE_H5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL)); }
  void close();
};

void RunLog::Impl::open_groups() {
  root = open_group(file.get(), "/");
  metrics_group = open_group(file.get(), "metrics");
  tables_group = open_group(file.get(), "tables");
  events_group = open_group(file.get(), "events");
}

void RunLog::Impl::load_metrics(hid_t group, const std::string& prefix) {
  for (const auto& child : h5::child_names(group, H5I_GROUP)) {
    std::string name = prefix.empty() ? child : prefix + "/" + child;
    H5Handle g = open_group(group, child);
    load_metrics(g.get(), name);  // "train" may be a metric and hold "train/loss" too
    if (TROUPE_H5(H5Lexists(g.get(), "value", H5P_DEFAULT)) <= 0) continue;
    MetricWriter m;
    m.step = open_column(g.get(), "step", H5T_NATIVE_INT64);
    m.value = open_column(g.get(), "value", H5T_NATIVE_DOUBLE);
    m.wall_time = open_column(g.get(), "wall_time", H5T_NATIVE_DOUBLE);
    even_out(m.all());
    m.last = last_step(m.step);
    m.group = std::move(g);
    metrics.emplace(name, std::move(m));
  }
}

void RunLog::Impl::load_tables() {
  for (const auto& name : h5::child_names(tables_group.get(), H5I_GROUP)) {
    TableWriter t;
    t.group = open_group(tables_group.get(), name);
    t.step = open_column(t.group.get(), "step", H5T_NATIVE_INT64);
    for (const auto& col : h5::child_names(t.group.get(), H5I_DATASET)) {
      if (col != "step") t.columns.emplace(col, open_column(t.group.get(), col, str_type.get()));
    }
    even_out(t.all());
    t.last = last_step(t.step);
    tables.emplace(name, std::move(t));
  }
}

void RunLog::Impl::load_events() {
  hid_t g = events_group.get();
  events.step = open_column(g, "step", H5T_NATIVE_INT64);
  events.wall_time = open_column(g, "wall_time", H5T_NATIVE_DOUBLE);
  events.kind = open_column(g, "kind", str_type.get());
  events.message = open_column(g, "message", str_type.get());
  even_out(events.all());
}

MetricWriter& RunLog::Impl::metric(const std::string& name) {
  auto it = metrics.find(name);
  if (it != metrics.end()) return it->second;
  MetricWriter m;
  m.group = open_or_create_group(metrics_group.get(), name);
  m.step = create_column(m.group.get(), "step", H5T_STD_I64LE, H5T_NATIVE_INT64);
  m.value = create_column(m.group.get(), "value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
  m.wall_time = create_column(m.group.get(), "wall_time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
  return metrics.emplace(name, std::move(m)).first->second;
}

TableWriter& RunLog::Impl::table(const std::string& name) {
  auto it = tables.find(name);
  if (it != tables.end()) return it->second;
  TableWriter t;
  t.group = open_or_create_group(tables_group.get(), name);
  t.step = create_column(t.group.get(), "step", H5T_STD_I64LE, H5T_NATIVE_INT64);
  return tables.emplace(name, std::move(t)).first->second;
}

// A column first seen now is back-filled with "" for the rows already in the table.
Column& RunLog::Impl::table_column(TableWriter& t, const std::string& column) {
  auto it = t.columns.find(column);
  if (it != t.columns.end()) return it->second;
  Column c{h5::create_column(t.group.get(), column, str_type.get(), t.step.rows, kChunkRows), str_type.get(),
           t.step.rows};
  if (c.rows > 0) {
    std::vector<const char*> empty(c.rows, "");
    h5::write_rows(c.dset.get(), c.mem_type, 0, c.rows, empty.data());
  }
  return t.columns.emplace(column, std::move(c)).first->second;
}

void RunLog::Impl::close() {
  // Datasets and groups first: H5Fclose only really closes the file once nothing is open.
  metrics.clear();
  tables.clear();
  events = EventWriter{};
  for (H5Handle* g : {&metrics_group, &tables_group, &events_group, &root}) g->reset();
  str_type.reset();
  file.close();
}

RunLog::RunLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunLog::RunLog(RunLog&&) noexcept = default;
RunLog& RunLog::operator=(RunLog&&) noexcept = default;

RunLog::~RunLog() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; close() explicitly to see the error
  }
}

RunLog::Impl& RunLog::live(const char* what) {
  if (!impl_ || !impl_->file.valid()) throw IoError(std::string("run log: ") + what + " after close");
  return *impl_;
}

RunLog RunLog::create(const fs::path& file, const std::string& resolved_config_yaml, const RunMetadata& meta) {
  h5_silence_auto_errors();
  if (fs::exists(file)) throw IoError("run log already exists: " + file.string());
  auto impl = std::make_unique<Impl>();
  impl->path = file;
  H5Handle fapl = writer_access_plist();
  // H5F_ACC_EXCL: a racing creator fails instead of truncating someone's log.
  impl->file = H5Handle{TROUPE_H5(H5Fcreate(file.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()))};
  for (const char* g : {"metrics", "tables", "events"}) {
    H5Handle{TROUPE_H5(H5Gcreate2(impl->file.get(), g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT))};
  }
  impl->open_groups();
  hid_t ev = impl->events_group.get(), str = impl->str_type.get();
  impl->events.step = create_column(ev, "step", H5T_STD_I64LE, H5T_NATIVE_INT64);
  impl->events.wall_time = create_column(ev, "wall_time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
  impl->events.kind = create_column(ev, "kind", str, str);
  impl->events.message = create_column(ev, "message", str, str);

  hid_t root = impl->root.get();
  h5::write_string_attribute(root, "config", resolved_config_yaml);
  h5::write_string_attribute(root, "git_sha", meta.git_sha);
  h5::write_string_attribute(root, "hostname", meta.hostname);
  h5::write_string_attribute(root, "command_line", meta.command_line);
  h5::write_string_attribute(root, "start_time", meta.start_time);
  h5::write_int_attribute(root, "seed", meta.seed, H5T_STD_I64LE);
  h5::write_int_attribute(root, "world_size", meta.world_size, H5T_STD_I32LE);
  for (const auto& [lib, version] : meta.versions) {
    h5::write_string_attribute(root, "version." + lib, version);
  }
  impl->flush();
  return RunLog(std::move(impl));
}

RunLog RunLog::open_for_append(const fs::path& file) {
  h5_silence_auto_errors();
  if (!fs::exists(file)) throw IoError("run log not found: " + file.string());
  auto impl = std::make_unique<Impl>();
  impl->path = file;
  H5Handle fapl = writer_access_plist();
  try {
    impl->file = H5Handle{TROUPE_H5(H5Fopen(file.c_str(), H5F_ACC_RDWR, fapl.get()))};
  } catch (const IoError& e) {
    throw unreadable_log(file, e.what(), "for append");
  }
  impl->open_groups();
  impl->load_metrics(impl->metrics_group.get(), "");
  impl->load_tables();
  impl->load_events();
  impl->flush();  // persist any evening-out of crash-torn rows
  return RunLog(std::move(impl));
}

void RunLog::log_scalars(int64_t step, const std::map<std::string, double>& values) {
  Impl& impl = live("log_scalars");
  // Check everything before writing anything, so a bad call leaves no partial row.
  for (const auto& [name, value] : values) {
    require(valid_metric_name(name), "metric", name);
    auto it = impl.metrics.find(name);
    if (it != impl.metrics.end()) check_step_order(it->second.last, step, "metric '" + name + "'");
  }
  double wall = now_seconds();
  for (const auto& [name, value] : values) {
    MetricWriter& m = impl.metric(name);
    m.value.append(&value);
    m.wall_time.append(&wall);
    m.step.append(&step);
    m.last = step;
  }
  impl.flush();
}

void RunLog::log_table_row(const std::string& table, int64_t step, const std::map<std::string, std::string>& columns) {
  Impl& impl = live("log_table_row");
  require(valid_plain_name(table), "table", table);
  for (const auto& [column, text] : columns) require(valid_plain_name(column), "table column", column);
  auto it = impl.tables.find(table);
  if (it != impl.tables.end()) check_step_order(it->second.last, step, "table '" + table + "'");

  TableWriter& t = impl.table(table);
  for (const auto& [column, text] : columns) impl.table_column(t, column);
  for (auto& [column, c] : t.columns) {
    auto given = columns.find(column);
    const char* text = given == columns.end() ? "" : given->second.c_str();
    c.append(&text);
  }
  t.step.append(&step);
  t.last = step;
  impl.flush();
}

void RunLog::log_event(int64_t step, const std::string& kind, const std::string& message) {
  Impl& impl = live("log_event");
  double wall = now_seconds();
  const char* kind_c = kind.c_str();
  const char* message_c = message.c_str();
  impl.events.wall_time.append(&wall);
  impl.events.kind.append(&kind_c);
  impl.events.message.append(&message_c);
  impl.events.step.append(&step);
  impl.flush();
}

void RunLog::truncate_after(int64_t step) {
  Impl& impl = live("truncate_after");
  auto cut = [step](std::vector<Column*> columns, Column& step_column, int64_t& last) {
    hsize_t keep = rows_through(step_column, step);
    for (Column* c : columns) c->truncate(keep);
    last = last_step(step_column);
  };
  for (auto& [name, m] : impl.metrics) cut(m.all(), m.step, m.last);
  for (auto& [name, t] : impl.tables) cut(t.all(), t.step, t.last);
  impl.flush();
}

void RunLog::set_attribute(const std::string& key, const std::string& value) {
  Impl& impl = live("set_attribute");
  if (key.empty()) throw DataError("run log: empty attribute name");
  h5::write_string_attribute(impl.root.get(), key, value);
  impl.flush();
}

void RunLog::set_config(const std::string& resolved_config_yaml) { set_attribute("config", resolved_config_yaml); }

void RunLog::flush() { live("flush").flush(); }

void RunLog::close() {
  if (impl_ && impl_->file.valid()) impl_->close();
}

const fs::path& RunLog::path() const {
  if (!impl_) throw IoError("run log: path() on a moved-from RunLog");
  return impl_->path;
}

// ---------------------------------------------------------------------------------------
// Reader

struct RunLogReader::Impl {
  fs::path path;
  H5Handle file;

  std::string where() const { return "run log " + path.string(); }
  void collect_metrics(hid_t group, const std::string& prefix, std::vector<std::string>& out) const;
};

void RunLogReader::Impl::collect_metrics(hid_t group, const std::string& prefix, std::vector<std::string>& out) const {
  for (const auto& child : h5::child_names(group, H5I_GROUP)) {
    std::string name = prefix.empty() ? child : prefix + "/" + child;
    H5Handle g = open_group(group, child);
    if (TROUPE_H5(H5Lexists(g.get(), "value", H5P_DEFAULT)) > 0) out.push_back(name);
    collect_metrics(g.get(), name, out);
  }
}

namespace {

// Without file locking, a live writer's lock in another process does not keep us out
// (PLATFORM.md: HDF5). A writer in this process shares its open file with us instead, and
// HDF5 then insists the locking flags match the writer's, so that case retries with locking.
H5Handle open_read_only(const fs::path& file) {
  try {
    H5Handle fapl{TROUPE_H5(H5Pcreate(H5P_FILE_ACCESS))};
    TROUPE_H5(H5Pset_file_locking(fapl.get(), false, true));
    return H5Handle{TROUPE_H5(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl.get()))};
  } catch (const IoError& e) {
    if (std::string(e.what()).find("file locking flag values don't match") == std::string::npos) throw;
  }
  return H5Handle{TROUPE_H5(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT))};
}

}  // namespace

RunLogReader::RunLogReader(const fs::path& file) : impl_(std::make_unique<Impl>()) {
  h5_silence_auto_errors();
  impl_->path = file;
  if (!fs::exists(file)) throw IoError("run log not found: " + file.string());
  try {
    impl_->file = open_read_only(file);
  } catch (const IoError& e) {
    throw unreadable_log(file, e.what(), "for reading");
  }
}

fs::path run_log_path(const std::string& run_or_file) {
  fs::path p(run_or_file);
  if (fs::is_directory(p)) p /= "log.h5";
  if (!fs::is_regular_file(p))
    throw ConfigError(p.string() + ": no such run log (expected a run directory holding log.h5, or a log.h5 file)");
  return p;
}

RunLogReader::~RunLogReader() = default;
RunLogReader::RunLogReader(RunLogReader&&) noexcept = default;
RunLogReader& RunLogReader::operator=(RunLogReader&&) noexcept = default;

std::string RunLogReader::config_yaml() const {
  auto config = attribute("config");
  if (!config) throw DataError(impl_->where() + " has no config attribute");
  return *config;
}

std::optional<std::string> RunLogReader::attribute(const std::string& key) const {
  hid_t f = impl_->file.get();
  if (key.empty() || TROUPE_H5(H5Aexists(f, key.c_str())) <= 0) return std::nullopt;
  return h5::read_attribute_text(f, key);
}

std::map<std::string, std::string> RunLogReader::attributes() const {
  std::map<std::string, std::string> out;
  hid_t f = impl_->file.get();
  for (const auto& key : h5::attribute_names(f)) out[key] = h5::read_attribute_text(f, key);
  return out;
}

std::vector<std::string> RunLogReader::metric_names() const {
  std::vector<std::string> names;
  if (h5::path_exists(impl_->file.get(), "metrics")) {
    H5Handle g = open_group(impl_->file.get(), "metrics");
    impl_->collect_metrics(g.get(), "", names);
  }
  std::sort(names.begin(), names.end());
  return names;
}

MetricSeries RunLogReader::metric(const std::string& name) const { return metric(name, 0); }

namespace {

struct MetricColumns {
  H5Handle step, value, wall;
  hsize_t rows = 0;  // the shortest column bounds the complete rows (a crash may tear the last one)
};

MetricColumns open_metric(hid_t f, const std::string& name, const std::string& where) {
  if (!valid_metric_name(name) || !h5::path_exists(f, "metrics/" + name + "/value")) {
    throw DataError(where + " has no metric '" + name + "'");
  }
  H5Handle g = open_group(f, "metrics/" + name);
  auto column = [&](const char* c) { return H5Handle{TROUPE_H5(H5Dopen2(g.get(), c, H5P_DEFAULT))}; };
  MetricColumns m{column("step"), column("value"), column("wall_time")};
  m.rows =
      std::min({h5::column_length(m.step.get()), h5::column_length(m.value.get()), h5::column_length(m.wall.get())});
  return m;
}

}  // namespace

MetricSeries RunLogReader::metric(const std::string& name, int64_t first_row) const {
  const MetricColumns m = open_metric(impl_->file.get(), name, impl_->where());
  const hsize_t from = static_cast<hsize_t>(std::max<int64_t>(first_row, 0));
  const hsize_t n = from >= m.rows ? 0 : m.rows - from;
  return MetricSeries{h5::read_int64_rows(m.step.get(), from, n), h5::read_double_rows(m.value.get(), from, n),
                      h5::read_double_rows(m.wall.get(), from, n)};
}

int64_t RunLogReader::metric_length(const std::string& name) const {
  return static_cast<int64_t>(open_metric(impl_->file.get(), name, impl_->where()).rows);
}

std::vector<std::string> RunLogReader::table_names() const {
  if (!h5::path_exists(impl_->file.get(), "tables")) return {};
  H5Handle g = open_group(impl_->file.get(), "tables");
  return h5::child_names(g.get(), H5I_GROUP);
}

std::map<std::string, std::vector<std::string>> RunLogReader::table(const std::string& name) const {
  hid_t f = impl_->file.get();
  if (!valid_plain_name(name) || !h5::path_exists(f, "tables/" + name + "/step")) {
    throw DataError(impl_->where() + " has no table '" + name + "'");
  }
  H5Handle g = open_group(f, "tables/" + name);
  std::map<std::string, H5Handle> dsets;
  hsize_t n = std::numeric_limits<hsize_t>::max();
  for (const auto& col : h5::child_names(g.get(), H5I_DATASET)) {
    H5Handle d{TROUPE_H5(H5Dopen2(g.get(), col.c_str(), H5P_DEFAULT))};
    n = std::min(n, h5::column_length(d.get()));
    dsets.emplace(col, std::move(d));
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [col, d] : dsets) {
    if (col != "step") {
      out[col] = h5::read_string_column(d.get(), n);
      continue;
    }
    for (int64_t s : h5::read_int64_column(d.get(), n)) out["step"].push_back(std::to_string(s));
  }
  out["step"];  // present even for an empty table
  return out;
}

std::vector<LogEvent> RunLogReader::events() const {
  hid_t f = impl_->file.get();
  if (!h5::path_exists(f, "events/step")) return {};
  H5Handle g = open_group(f, "events");
  auto column = [&](const char* c) { return H5Handle{TROUPE_H5(H5Dopen2(g.get(), c, H5P_DEFAULT))}; };
  H5Handle step = column("step"), wall = column("wall_time"), kind = column("kind"), message = column("message");
  hsize_t n = std::min({h5::column_length(step.get()), h5::column_length(wall.get()), h5::column_length(kind.get()),
                        h5::column_length(message.get())});
  auto steps = h5::read_int64_column(step.get(), n);
  auto walls = h5::read_double_column(wall.get(), n);
  auto kinds = h5::read_string_column(kind.get(), n);
  auto messages = h5::read_string_column(message.get(), n);
  std::vector<LogEvent> out(n);
  for (hsize_t i = 0; i < n; ++i) out[i] = LogEvent{steps[i], walls[i], kinds[i], messages[i]};
  return out;
}

}  // namespace troupe::core
