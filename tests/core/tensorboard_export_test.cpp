// Unit tests of core/tensorboard_export.h on run logs written here: what a one-shot export writes, what a second
// poll adds, the purge-and-rewrite after a rollback, held-back table steps, and the output directory rules. The
// events are decoded with core/protobuf_wire.h; TensorBoard's own readers check them in tests/cli/*_test.py.
#include "core/tensorboard_export.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "core/errors.h"
#include "core/protobuf_wire.h"
#include "core/run_log.h"
#include "core/tfrecord.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using testing::ScratchDir;

// One decoded record: a scalar, a text, a SessionLog.START or the file header.
struct Decoded {
  std::string kind;  // "version", "start", "float32", "scalar" (float64), "text"
  int64_t step = 0;
  double wall_time = 0;
  std::string tag;
  double value = 0;
  std::vector<int64_t> shape;
  std::vector<std::string> cells;
};

const protobuf::Field* field(const std::vector<protobuf::Field>& fields, uint32_t number) {
  for (const auto& f : fields)
    if (f.number == number) return &f;
  return nullptr;
}

void decode_tensor(const std::string& bytes, Decoded& d) {
  for (const auto& f : protobuf::parse_fields(bytes)) {
    if (f.number == 2)
      for (const auto& dim : protobuf::parse_fields(f.bytes))
        d.shape.push_back(static_cast<int64_t>(field(protobuf::parse_fields(dim.bytes), 1)->varint));
    if (f.number == 6) std::memcpy(&d.value, f.bytes.data(), sizeof(double));
    if (f.number == 8) d.cells.push_back(f.bytes);
  }
}

Decoded decode(const std::string& record) {
  const auto fields = protobuf::parse_fields(record);
  Decoded d;
  d.wall_time = std::bit_cast<double>(field(fields, 1)->varint);
  if (const auto* step = field(fields, 2)) d.step = static_cast<int64_t>(step->varint);
  if (field(fields, 3)) d.kind = "version";
  if (field(fields, 7)) d.kind = "start";
  if (const auto* summary = field(fields, 5)) {
    const auto value = protobuf::parse_fields(field(protobuf::parse_fields(summary->bytes), 1)->bytes);
    d.tag = field(value, 1)->bytes;
    if (const auto* simple = field(value, 2)) {
      d.kind = "float32";
      d.value = std::bit_cast<float>(static_cast<uint32_t>(simple->varint));
      return d;
    }
    const auto metadata = protobuf::parse_fields(field(value, 9)->bytes);
    const auto plugin = field(protobuf::parse_fields(field(metadata, 1)->bytes), 1)->bytes;
    d.kind = plugin == "scalars" ? "scalar" : "text";
    decode_tensor(field(value, 8)->bytes, d);
  }
  return d;
}

std::vector<Decoded> read_events(const std::filesystem::path& file) {
  std::vector<Decoded> out;
  for (const auto& record : read_tfrecords(file)) out.push_back(decode(record));
  return out;
}

std::vector<Decoded> with_tag(const std::vector<Decoded>& events, const std::string& tag) {
  std::vector<Decoded> out;
  for (const auto& e : events)
    if (e.tag == tag) out.push_back(e);
  return out;
}

RunLog new_log(const std::filesystem::path& file) {
  RunMetadata meta;
  meta.hostname = "test-host";
  return RunLog::create(file, "model:\n  layers: 2\n", meta);
}

TEST(TensorBoardExport, OneShotWritesEveryRowTableAndEvent) {
  ScratchDir dir;
  {
    RunLog log = new_log(dir / "log.h5");
    log.log_event(0, "start", "began");
    for (int64_t step = 1; step <= 3; ++step) log.log_scalars(step, {{"train/loss", 1.0 / 3.0 * step}});
    log.log_scalars(3, {{"eval/acc", 0.1}});
    log.log_table_row("samples", 2, {{"prompt", "p|1"}, {"completion", "line\nbreak"}});
    log.log_table_row("samples", 2, {{"prompt", "p2"}});
    log.log_table_row("samples", 3, {{"prompt", "p3"}, {"completion", "c3"}});
  }
  TensorBoardExport exporter(dir / "log.h5", dir / "tb", ScalarPrecision::kFloat64);
  const auto counts = exporter.poll(/*final=*/true);
  EXPECT_EQ(counts.scalars, 4);
  EXPECT_EQ(counts.texts, 2 + 1 + 1);  // two table steps, one event, the config
  const auto events = read_events(exporter.event_file());
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].kind, "version");
  EXPECT_EQ(events[1].kind, "start");
  EXPECT_EQ(events[1].step, 0);

  RunLogReader reader(dir / "log.h5");
  const auto loss = with_tag(events, "train/loss");
  const auto expected = reader.metric("train/loss");
  ASSERT_EQ(loss.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(loss[i].step, expected.steps[i]);
    EXPECT_EQ(loss[i].value, expected.values[i]);  // all 64 bits
    EXPECT_EQ(loss[i].wall_time, expected.wall_time[i]);
    EXPECT_TRUE(loss[i].shape.empty());
  }
  const auto samples = with_tag(events, "tables/samples");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].step, 2);
  EXPECT_EQ(samples[0].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(samples[0].cells, (std::vector<std::string>{"completion", "prompt", "line\nbreak", "p|1", "", "p2"}));
  EXPECT_EQ(samples[1].cells, (std::vector<std::string>{"completion", "prompt", "c3", "p3"}));
  EXPECT_EQ(samples[0].wall_time, expected.wall_time[1]);  // the loss row of step 2: tables have no wall time

  const auto log_events = with_tag(events, "events");
  ASSERT_EQ(log_events.size(), 1u);
  EXPECT_EQ(log_events[0].cells, (std::vector<std::string>{"step", "kind", "message", "0", "start", "began"}));
  EXPECT_EQ(log_events[0].wall_time, reader.events()[0].wall_time);
  const auto config = with_tag(events, "config");
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0].cells, std::vector<std::string>{"```yaml\nmodel:\n  layers: 2\n```"});
  EXPECT_EQ(exporter.run_status(), "");

  TensorBoardExport float32(dir / "log.h5", dir / "tb32");  // the default: simple_value, rounded to float
  float32.poll(true);
  const auto rounded = with_tag(read_events(float32.event_file()), "train/loss");
  ASSERT_EQ(rounded.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rounded[i].kind, "float32");
    EXPECT_EQ(rounded[i].value, static_cast<double>(static_cast<float>(expected.values[i])));
    EXPECT_EQ(rounded[i].wall_time, expected.wall_time[i]);
  }
  EXPECT_NE(rounded[0].value, expected.values[0]);  // 1/3 is not a float
}

TEST(TensorBoardExport, LaterPollsWriteOnlyNewRowsAndHoldBackTheNewestTableStep) {
  ScratchDir dir;
  RunLog log = new_log(dir / "log.h5");
  log.log_scalars(1, {{"loss", 1.0}});
  log.log_table_row("samples", 1, {{"text", "a"}});
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  auto counts = exporter.poll(/*final=*/false);
  EXPECT_EQ(counts.scalars, 1);
  EXPECT_EQ(counts.texts, 1);  // the config; step 1 of the table may still grow
  log.log_table_row("samples", 1, {{"text", "b"}});
  log.log_scalars(2, {{"loss", 2.0}});
  log.log_table_row("samples", 2, {{"text", "c"}});
  counts = exporter.poll(/*final=*/false);
  EXPECT_EQ(counts.scalars, 1);
  EXPECT_EQ(counts.texts, 1);  // table step 1, now complete
  EXPECT_EQ(counts.restarts, 0);
  counts = exporter.poll(/*final=*/true);
  EXPECT_EQ(counts.scalars, 0);
  EXPECT_EQ(counts.texts, 1);  // table step 2
  const auto events = read_events(exporter.event_file());
  EXPECT_EQ(with_tag(events, "loss").size(), 2u);
  const auto samples = with_tag(events, "tables/samples");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].cells, (std::vector<std::string>{"text", "a", "b"}));
}

TEST(TensorBoardExport, RollbackPurgesFromTheFirstLostStepAndRewrites) {
  ScratchDir dir;
  RunLog log = new_log(dir / "log.h5");
  for (int64_t step = 0; step < 10; ++step) log.log_scalars(step, {{"loss", step * 1.0}, {"lr", 0.5}});
  log.log_event(0, "start", "s");
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  exporter.poll(false);
  log.truncate_after(4);
  log.log_event(4, "resume", "from 4");
  for (int64_t step = 5; step < 7; ++step) log.log_scalars(step, {{"loss", -step * 1.0}, {"lr", 0.5}});
  const auto counts = exporter.poll(false);
  EXPECT_EQ(counts.restarts, 1);
  EXPECT_EQ(counts.scalars, 4);  // steps 5 and 6 of both metrics
  EXPECT_EQ(counts.texts, 1);    // the resume event (TensorBoard step 1: the second event)
  const auto events = read_events(exporter.event_file());
  // Apply the readers' rule (SessionLog.START at step F drops what they hold at steps >= F) and compare.
  std::vector<Decoded> shown;
  for (const auto& e : events) {
    if (e.kind == "start") std::erase_if(shown, [&](const Decoded& d) { return d.step >= e.step; });
    if (e.tag == "loss") shown.push_back(e);
  }
  const auto expected = RunLogReader(dir / "log.h5").metric("loss");
  ASSERT_EQ(shown.size(), expected.steps.size());
  for (size_t i = 0; i < shown.size(); ++i) {
    EXPECT_EQ(shown[i].step, expected.steps[i]);
    EXPECT_EQ(shown[i].value, expected.values[i]);
  }
  EXPECT_EQ(shown.back().value, -6.0);
  EXPECT_EQ(events.back().kind, "float32");  // nothing rewritten twice: the purge is followed by rows only
  EXPECT_EQ(with_tag(events, "lr").size(), 12u);
}

TEST(TensorBoardExport, RowsGoneWithoutAResumeEventAreATornReadNotARollback) {
  ScratchDir dir;
  RunLog log = new_log(dir / "log.h5");
  for (int64_t step = 0; step < 10; ++step) log.log_scalars(step, {{"loss", step * 1.0}});
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  exporter.poll(false);
  const size_t written = read_events(exporter.event_file()).size();
  log.truncate_after(4);  // as a reader can see it between the truncation and its resume event
  EXPECT_THROW(exporter.poll(false), IoError);
  EXPECT_EQ(read_events(exporter.event_file()).size(), written);  // nothing purged, nothing written
  log.log_event(4, "resume", "from 4");
  const auto counts = exporter.poll(false);
  EXPECT_EQ(counts.restarts, 1);
}

TEST(TensorBoardExport, ExportingAgainReplacesTheEarlierFileAndRefusesForeignOnes) {
  ScratchDir dir;
  {
    RunLog log = new_log(dir / "log.h5");
    log.log_scalars(1, {{"loss", 1.0}});
  }
  std::filesystem::path first;
  {
    TensorBoardExport exporter(dir / "log.h5", dir / "tb");
    exporter.poll(true);
    first = exporter.event_file();
  }
  TensorBoardExport again(dir / "log.h5", dir / "tb");
  again.poll(true);
  again.close();
  EXPECT_NE(again.event_file(), first);
  EXPECT_EQ(tensorboard::event_files_in(dir / "tb"), std::vector<std::filesystem::path>{again.event_file()});
  EXPECT_EQ(with_tag(read_events(again.event_file()), "loss").size(), 1u);

  testing::write_file(dir / "tb" / "events.out.tfevents.1.elsewhere", "not ours");
  try {
    TensorBoardExport refused(dir / "log.h5", dir / "tb");
    FAIL() << "exported over another writer's event file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("events.out.tfevents.1.elsewhere"), std::string::npos) << e.what();
  }
}

TEST(TensorBoardExport, RejectsMetricsNamedLikeTheTextTags) {
  ScratchDir dir;
  {
    RunLog log = new_log(dir / "log.h5");
    log.log_scalars(1, {{"config", 1.0}});
  }
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  EXPECT_THROW(exporter.poll(true), DataError);
}

TEST(TensorBoardExport, FollowEndsWhenTheRunIsNoLongerRunning) {
  ScratchDir dir;
  RunLog log = new_log(dir / "log.h5");
  log.set_attribute("status", "running");
  log.log_scalars(1, {{"loss", 1.0}});
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  int polls = 0;
  FollowOptions options;
  options.poll_seconds = 0.01;
  options.stop = [&] { return false; };
  options.progress = [&](const ExportCounts&) {
    if (++polls == 1) {  // the run goes on after the first poll, then finishes
      log.log_scalars(2, {{"loss", 2.0}});
      log.set_attribute("status", "finished");
    }
  };
  const auto total = follow_run(exporter, options);
  EXPECT_EQ(total.scalars, 2);
  EXPECT_EQ(exporter.run_status(), "finished");
  EXPECT_EQ(with_tag(read_events(exporter.event_file()), "loss").size(), 2u);
}

TEST(TensorBoardExport, FollowStopsOnRequest) {
  ScratchDir dir;
  RunLog log = new_log(dir / "log.h5");
  log.set_attribute("status", "running");
  TensorBoardExport exporter(dir / "log.h5", dir / "tb");
  FollowOptions options;
  options.poll_seconds = 3600;  // the stop check inside the wait must end it, not the poll interval
  options.stop = [] { return true; };
  const auto started = std::chrono::steady_clock::now();
  follow_run(exporter, options);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_EQ(exporter.run_status(), "running");
  options.poll_seconds = 0;
  EXPECT_THROW(follow_run(exporter, options), ConfigError);
}

}  // namespace
}  // namespace troupe::core
