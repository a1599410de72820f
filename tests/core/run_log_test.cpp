// Unit tests of the HDF5 run log (core/run_log.h): round trips through RunLogReader with
// hand-written expectations. Crash survival is in run_log_crash_mp_test.cpp, h5py in *.py.
#include "core/run_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using Strings = std::vector<std::string>;
using testing::ScratchDir;

RunMetadata sample_metadata() {
  RunMetadata meta;
  meta.git_sha = "abc123";
  meta.hostname = "node-7";
  meta.command_line = "troupe train --config=gpt.yaml";
  meta.start_time = "2024-05-01T12:00:00Z";
  meta.seed = -42;
  meta.world_size = 4;
  meta.versions = {{"libtorch", "1.13.1"}, {"hdf5", "1.10.8"}};
  return meta;
}

const std::string kConfig = "model:\n  layers: 4\n  d_model: 256\ntrain:\n  lr: 0.0003\n";

RunLog make_log(const std::filesystem::path& file) { return RunLog::create(file, kConfig, sample_metadata()); }

std::vector<int64_t> steps_of(const RunLogReader& r, const std::string& metric) { return r.metric(metric).steps; }

// Expects `fn` to throw E whose message contains every one of `needles`.
template <typename E, typename Fn>
void expect_throw_mentioning(Fn fn, const Strings& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(RunLog, RoundTripsConfigAndMetadata) {
  ScratchDir dir;
  auto file = dir / "log.h5";
  {
    auto log = make_log(file);
    log.set_attribute("status", "running");
    log.set_attribute("status", "finished");  // replaces
    log.set_attribute("end_time", "2024-05-01T13:00:00Z");
  }
  RunLogReader r(file);
  EXPECT_EQ(r.config_yaml(), kConfig);
  EXPECT_EQ(r.attribute("git_sha"), "abc123");
  EXPECT_EQ(r.attribute("hostname"), "node-7");
  EXPECT_EQ(r.attribute("command_line"), "troupe train --config=gpt.yaml");
  EXPECT_EQ(r.attribute("start_time"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(r.attribute("seed"), "-42");
  EXPECT_EQ(r.attribute("world_size"), "4");
  EXPECT_EQ(r.attribute("version.libtorch"), "1.13.1");
  EXPECT_EQ(r.attribute("status"), "finished");
  EXPECT_EQ(r.attribute("no_such_key"), std::nullopt);
  auto all = r.attributes();
  Strings keys;
  for (const auto& [k, v] : all) keys.push_back(k);
  EXPECT_EQ(keys, (Strings{"command_line", "config", "end_time", "git_sha", "hostname", "seed", "start_time", "status",
                           "version.hdf5", "version.libtorch", "world_size"}));
  EXPECT_EQ(all["end_time"], "2024-05-01T13:00:00Z");
}

TEST(RunLog, SetConfigReplacesConfigAndLargeConfigFits) {
  ScratchDir dir;
  std::string big = "items:\n";
  for (int i = 0; i < 10000; ++i) big += "  - item_" + std::to_string(i) + "\n";
  ASSERT_GT(big.size(), 100000u);  // past the 64 KiB limit of compact attribute storage
  {
    auto log = make_log(dir / "log.h5");
    log.set_config(big);
  }
  EXPECT_EQ(RunLogReader(dir / "log.h5").config_yaml(), big);
}

TEST(RunLog, MetricsRoundTripIncludingSparseAndNestedNames) {
  ScratchDir dir;
  double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  {
    auto log = make_log(dir / "log.h5");
    for (int64_t step = 0; step < 5; ++step) {
      std::map<std::string, double> values{{"loss", 10.0 - step}, {"train/loss", step * 0.25}};
      if (step % 2 == 0) values["eval/acc"] = 0.5 + step / 10.0;  // only at steps 0, 2, 4
      log.log_scalars(step, values);
    }
    log.log_scalars(7, {{"train", 3.5}});  // a metric whose group also holds train/loss
  }
  double after = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(r.metric_names(), (Strings{"eval/acc", "loss", "train", "train/loss"}));
  auto loss = r.metric("loss");
  EXPECT_EQ(loss.steps, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(loss.values, (std::vector<double>{10, 9, 8, 7, 6}));
  EXPECT_EQ(r.metric("train/loss").values, (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0}));
  auto acc = r.metric("eval/acc");
  EXPECT_EQ(acc.steps, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(acc.values, (std::vector<double>{0.5, 0.7, 0.9}));
  EXPECT_EQ(r.metric("train").steps, (std::vector<int64_t>{7}));
  ASSERT_EQ(loss.wall_time.size(), 5u);
  for (double t : loss.wall_time) {
    EXPECT_GE(t, before);
    EXPECT_LE(t, after);
  }
  EXPECT_TRUE(std::is_sorted(loss.wall_time.begin(), loss.wall_time.end()));
}

// What a live viewer fetches: the rows from the first it lacks (the dashboard's incremental fetch).
TEST(RunLog, ReaderReadsAMetricFromARow) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    for (int64_t step = 0; step < 5; ++step) log.log_scalars(step * 10, {{"loss", 10.0 - step}});
  }
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(r.metric_length("loss"), 5);
  const auto tail = r.metric("loss", 3);
  EXPECT_EQ(tail.steps, (std::vector<int64_t>{30, 40}));
  EXPECT_EQ(tail.values, (std::vector<double>{7, 6}));
  const auto all = r.metric("loss");
  EXPECT_EQ(tail.wall_time, std::vector<double>(all.wall_time.begin() + 3, all.wall_time.end()));
  EXPECT_EQ(r.metric("loss", 0).values, r.metric("loss").values);
  EXPECT_TRUE(r.metric("loss", 5).steps.empty());
  EXPECT_TRUE(r.metric("loss", 99).values.empty());
  EXPECT_EQ(r.metric("loss", -3).steps.size(), 5u);
  EXPECT_THROW(r.metric_length("nope"), DataError);
  EXPECT_THROW(r.metric("nope", 0), DataError);
}

TEST(RunLog, TablesBackFillLateColumnsAndKeepUtf8) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    log.log_table_row("samples", 0, {{"prompt", "x"}});
    log.log_table_row("samples", 5, {{"prompt", "y"}, {"reward", "0.5"}});  // new column
    log.log_table_row("samples", 7, {{"reward", "héllo ✓"}});               // prompt missing
    log.log_table_row("evals", 3, {});
  }
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(r.table_names(), (Strings{"evals", "samples"}));
  auto t = r.table("samples");
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t["step"], (Strings{"0", "5", "7"}));
  EXPECT_EQ(t["prompt"], (Strings{"x", "y", ""}));
  EXPECT_EQ(t["reward"], (Strings{"", "0.5", "héllo ✓"}));
  auto evals = r.table("evals");
  EXPECT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals["step"], (Strings{"3"}));
  expect_throw_mentioning<DataError>([&] { r.table("nope"); }, {"nope", "log.h5"});
}

TEST(RunLog, EventsRoundTrip) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    log.log_event(0, "start", "hello");
    log.log_event(12, "checkpoint", "wrote ckpt-12 (ünïcode)");
  }
  auto events = RunLogReader(dir / "log.h5").events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].step, 0);
  EXPECT_EQ(events[0].kind, "start");
  EXPECT_EQ(events[0].message, "hello");
  EXPECT_EQ(events[1].step, 12);
  EXPECT_EQ(events[1].kind, "checkpoint");
  EXPECT_EQ(events[1].message, "wrote ckpt-12 (ünïcode)");
  EXPECT_LE(events[0].wall_time, events[1].wall_time);
  EXPECT_GT(events[0].wall_time, 1.6e9);  // seconds since the epoch, not steady-clock time
}

// Steps 0..9 with loss = step, eval at odd steps, table rows at 0, 3, 6, 9, events at 2, 8.
void log_ten_steps(RunLog& log) {
  for (int64_t s = 0; s < 10; ++s) {
    std::map<std::string, double> values{{"loss", static_cast<double>(s)}};
    if (s % 2 == 1) values["eval/loss"] = s * 10.0;
    log.log_scalars(s, values);
    if (s % 3 == 0) log.log_table_row("samples", s, {{"text", "t" + std::to_string(s)}});
    if (s == 2 || s == 8) log.log_event(s, "note", "at " + std::to_string(s));
  }
}

TEST(RunLog, TruncateAfterDropsLaterMetricAndTableRowsButKeepsEvents) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    log_ten_steps(log);
    log.truncate_after(5);
    log.log_scalars(6, {{"loss", 60.0}});  // the resumed run's step 6 replaces the old one
  }
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(steps_of(r, "loss"), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.metric("loss").values, (std::vector<double>{0, 1, 2, 3, 4, 5, 60}));
  EXPECT_EQ(steps_of(r, "eval/loss"), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(r.metric("eval/loss").values, (std::vector<double>{10, 30, 50}));
  auto t = r.table("samples");
  EXPECT_EQ(t["step"], (Strings{"0", "3"}));
  EXPECT_EQ(t["text"], (Strings{"t0", "t3"}));
  auto events = r.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].message, "at 8");
}

TEST(RunLog, TruncateBeforeFirstRowEmptiesMetrics) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    log_ten_steps(log);
    log.truncate_after(-1);
    log.log_scalars(0, {{"loss", 0.5}});
  }
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(r.metric("loss").values, (std::vector<double>{0.5}));
  EXPECT_TRUE(r.metric("eval/loss").steps.empty());
  EXPECT_EQ(r.table("samples")["step"], Strings{});
  EXPECT_EQ(r.table("samples")["text"], Strings{});
}

TEST(RunLog, DecreasingStepIsRejectedWithoutWritingAnything) {
  ScratchDir dir;
  auto log = make_log(dir / "log.h5");
  log.log_scalars(5, {{"loss", 1.0}});
  log.log_scalars(5, {{"loss", 2.0}});  // the same step twice is allowed
  expect_throw_mentioning<DataError>(
      [&] {
        log.log_scalars(4, {{"acc", 1.0}, {"loss", 1.0}});
      },
      {"loss", "step 4", "step 5", "truncate_after"});
  log.log_table_row("t", 5, {{"a", "x"}});
  EXPECT_THROW(log.log_table_row("t", 3, {{"a", "y"}}), DataError);
  log.close();
  RunLogReader r(dir / "log.h5");
  EXPECT_EQ(r.metric_names(), Strings{"loss"});  // the rejected call did not create "acc"
  EXPECT_EQ(r.metric("loss").values, (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(r.table("t")["a"], Strings{"x"});
}

TEST(RunLog, OpenForAppendContinuesAnUnfinishedRun) {
  ScratchDir dir;
  auto file = dir / "log.h5";
  {
    auto log = make_log(file);
    log_ten_steps(log);
  }  // the "crashed" run got to step 9; its checkpoint is at step 6
  {
    auto log = RunLog::open_for_append(file);
    log.truncate_after(6);
    log.log_event(6, "resume", "from ckpt-6");
    log.log_scalars(7, {{"loss", 70.0}, {"eval/loss", 700.0}, {"new", 1.0}});
    log.log_table_row("samples", 7, {{"text", "t7"}, {"extra", "e"}});
    log.set_attribute("status", "finished");
  }
  RunLogReader r(file);
  EXPECT_EQ(r.metric("loss").values, (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 70}));
  EXPECT_EQ(steps_of(r, "eval/loss"), (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_EQ(r.metric("new").values, (std::vector<double>{1.0}));
  auto t = r.table("samples");
  EXPECT_EQ(t["step"], (Strings{"0", "3", "6", "7"}));
  EXPECT_EQ(t["text"], (Strings{"t0", "t3", "t6", "t7"}));
  EXPECT_EQ(t["extra"], (Strings{"", "", "", "e"}));
  auto events = r.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, "resume");
  EXPECT_EQ(r.config_yaml(), kConfig);
  EXPECT_EQ(r.attribute("status"), "finished");
}

TEST(RunLog, CreateOnExistingFileThrowsIoErrorAndLeavesItAlone) {
  ScratchDir dir;
  auto file = dir / "log.h5";
  {
    auto log = make_log(file);
    log.log_scalars(0, {{"loss", 1.0}});
  }
  expect_throw_mentioning<IoError>([&] { make_log(file); }, {"already exists", file.string()});
  EXPECT_EQ(RunLogReader(file).metric("loss").values, std::vector<double>{1.0});
}

TEST(RunLog, ReaderOnMissingOrNonHdf5FileThrowsIoErrorNamingPath) {
  ScratchDir dir;
  expect_throw_mentioning<IoError>([&] { RunLogReader r(dir / "missing.h5"); }, {"missing.h5"});
  expect_throw_mentioning<IoError>([&] { RunLog::open_for_append(dir / "missing.h5"); }, {"missing.h5"});
  testing::write_file(dir / "text.h5", "this is not an HDF5 file\n");
  // One line: the path, its size and HDF5's reason, not HDF5's call stack.
  expect_throw_mentioning<IoError>([&] { RunLogReader r(dir / "text.h5"); },
                                   {(dir / "text.h5").string(), "(25 bytes)", "signature", "not a Troupe log"});
}

TEST(RunLog, TruncatedLogIsOneClearLineForReadersAndAppenders) {
  ScratchDir dir;
  const auto file = dir / "log.h5";
  {
    auto log = make_log(file);
    for (int64_t step = 0; step < 200; ++step) log.log_scalars(step, {{"train/loss", 1.0 / (step + 1)}});
  }
  const auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size / 2);
  for (int purpose = 0; purpose < 2; ++purpose) {
    std::string message;
    try {
      if (purpose == 0)
        RunLogReader r(file);
      else
        RunLog::open_for_append(file);
    } catch (const IoError& e) {
      message = e.what();
    }
    EXPECT_THAT(message, ::testing::HasSubstr(file.string()));
    EXPECT_THAT(message, ::testing::HasSubstr(std::to_string(size / 2) + " bytes"));
    EXPECT_THAT(message, ::testing::HasSubstr("truncated"));
    EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("H5F_open"))) << "HDF5's call stack leaked: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(RunLog, UnknownMetricThrowsDataErrorNamingFileAndMetric) {
  ScratchDir dir;
  {
    auto log = make_log(dir / "log.h5");
    log.log_scalars(0, {{"train/loss", 1.0}});
  }
  RunLogReader r(dir / "log.h5");
  expect_throw_mentioning<DataError>([&] { r.metric("val/loss"); }, {"val/loss", "log.h5"});
  expect_throw_mentioning<DataError>([&] { r.metric("train"); }, {"'train'"});  // a group, not a metric
  expect_throw_mentioning<DataError>([&] { r.metric("train/loss/value"); }, {"train/loss/value"});
}

TEST(RunLog, InvalidNamesAreRejected) {
  ScratchDir dir;
  auto log = make_log(dir / "log.h5");
  for (const char* bad : {"", "/loss", "loss/", "a//b", "loss/value", "step", "a/./b"}) {
    EXPECT_THROW(log.log_scalars(0, {{bad, 1.0}}), DataError) << "metric '" << bad << "'";
  }
  EXPECT_THROW(log.log_table_row("a/b", 0, {}), DataError);
  EXPECT_THROW(log.log_table_row("t", 0, {{"step", "x"}}), DataError);
  EXPECT_THROW(log.log_table_row("t", 0, {{"a/b", "x"}}), DataError);
  EXPECT_THROW(log.set_attribute("", "x"), DataError);
}

TEST(RunLog, ReaderSeesWhatALiveWriterHasFlushed) {
  ScratchDir dir;
  auto log = make_log(dir / "log.h5");
  log.log_scalars(0, {{"loss", 1.5}});
  EXPECT_EQ(RunLogReader(dir / "log.h5").metric("loss").values, std::vector<double>{1.5});
  log.log_scalars(1, {{"loss", 2.5}});
  EXPECT_EQ(RunLogReader(dir / "log.h5").metric("loss").values, (std::vector<double>{1.5, 2.5}));
}

TEST(RunLog, CloseIsIdempotentAndLaterWritesThrow) {
  ScratchDir dir;
  auto log = make_log(dir / "log.h5");
  log.close();
  log.close();
  EXPECT_THROW(log.log_scalars(0, {{"loss", 1.0}}), IoError);
  EXPECT_THROW(log.flush(), IoError);
  RunLog moved = make_log(dir / "other.h5");
  RunLog target = std::move(moved);
  target.log_scalars(0, {{"loss", 1.0}});
  EXPECT_THROW(moved.log_scalars(1, {{"loss", 1.0}}), IoError);  // NOLINT(bugprone-use-after-move)
  target.close();
  EXPECT_EQ(RunLogReader(dir / "other.h5").metric("loss").steps, std::vector<int64_t>{0});
}

TEST(RunLog, TenThousandFlushedAppends) {
  ScratchDir dir;
  constexpr int64_t kSteps = 10000;
  auto start = std::chrono::steady_clock::now();
  {
    auto log = make_log(dir / "log.h5");
    for (int64_t s = 0; s < kSteps; ++s) log.log_scalars(s, {{"loss", s * 0.5}});
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("10000 flushed appends: %.3f s\n", seconds);
  EXPECT_LT(seconds, 20.0);  // ~1 s here; the bound only catches a pathological slowdown
  auto loss = RunLogReader(dir / "log.h5").metric("loss");
  ASSERT_EQ(loss.steps.size(), static_cast<size_t>(kSteps));
  for (int64_t s = 0; s < kSteps; ++s) {
    ASSERT_EQ(loss.steps[s], s);
    ASSERT_EQ(loss.values[s], s * 0.5);
  }
}

}  // namespace
}  // namespace troupe::core
