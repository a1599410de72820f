// Progress heartbeats (distributed/heartbeat.h): HeartbeatWriter publishes beats and the process's progress count;
// HangWatch, on a clock the test drives, tells a frozen worker (beats stand still) and a stuck one (progress stands
// still while it owes a reply) from a healthy or merely idle one.
#include "distributed/heartbeat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "core/errors.h"
#include "core/progress.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = HangWatch::Clock;
using testing::ScratchDir;
using testing::write_file;

TEST(Heartbeat, WriterPublishesRisingBeatsAndTheProgressCount) {
  ScratchDir dir;
  const auto file = dir / "actor.0.beat";
  core::progress_tick();
  {
    HeartbeatWriter writer(file, 20ms);
    const auto first = read_heartbeat(file);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->pid, ::getpid());
    EXPECT_EQ(first->progress, core::progress_count());
    core::progress_tick();
    const auto deadline = Clock::now() + 5s;
    std::optional<Heartbeat> later;
    while (Clock::now() < deadline) {
      later = read_heartbeat(file);
      if (later && later->beat >= first->beat + 2) break;
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(later);
    EXPECT_GE(later->beat, first->beat + 2);
    EXPECT_EQ(later->progress, core::progress_count());
  }
  const auto stopped = read_heartbeat(file);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(read_heartbeat(file)->beat, stopped->beat) << "the writer stops with its destructor";
}

TEST(Heartbeat, MalformedOrMissingFilesReadAsNothing) {
  ScratchDir dir;
  EXPECT_FALSE(read_heartbeat(dir / "none.beat"));
  write_file(dir / "bad.beat", "12 x\n");
  EXPECT_FALSE(read_heartbeat(dir / "bad.beat"));
}

// The WorkerFailure `check` throws (a test failure, and an empty one, when it throws none).
template <class Check>
WorkerFailure failure_of(const Check& check) {
  try {
    check();
  } catch (const WorkerFailure& e) {
    return e;
  }
  ADD_FAILURE() << "no WorkerFailure";
  return WorkerFailure("", "");
}

struct Beats {
  std::filesystem::path file;
  uint64_t beat = 0, progress = 0;
  void write(bool advance_progress) {
    ++beat;
    if (advance_progress) ++progress;
    write_file(file, std::to_string(beat) + " " + std::to_string(progress) + " 4242\n");
  }
};

TEST(Heartbeat, FrozenWhenBeatsStandStillForTheTimeout) {
  ScratchDir dir;
  HangWatch watch(3s);
  const Clock::time_point t0 = Clock::now();
  Beats w{dir / "critic.0.beat"};
  watch.add("role critic rank 0", w.file, t0);
  w.write(false);
  watch.check({}, t0 + 1s);
  watch.check({}, t0 + 3900ms);  // 2.9 s since the beat changed
  const WorkerFailure e = failure_of([&] { watch.check({}, t0 + 4100ms); });
  EXPECT_EQ(e.worker(), "role critic rank 0");
  EXPECT_THAT(e.what(), HasSubstr("frozen"));
  EXPECT_THAT(e.what(), HasSubstr("fault.hang_timeout_s = 3"));
}

TEST(Heartbeat, NoFirstBeatWithinTheTimeoutIsFrozenToo) {
  ScratchDir dir;
  HangWatch watch(2s);
  const Clock::time_point t0 = Clock::now();
  watch.add("role reward rank 0", dir / "reward.0.beat", t0);
  watch.check({}, t0 + 1s);
  EXPECT_THROW(watch.check({}, t0 + 2100ms), WorkerFailure);
}

TEST(Heartbeat, StuckOnlyWhileOwingAReplyAndCountedFromTheLaterOfBusyAndLastProgress) {
  ScratchDir dir;
  HangWatch watch(3s);
  const Clock::time_point t0 = Clock::now();
  Beats w{dir / "actor.0.beat"};
  watch.add("role actor rank 0", w.file, t0);
  // Idle and beating, no progress for 10 s: fine (nothing is owed).
  for (int s = 1; s <= 10; ++s) {
    w.write(false);
    watch.check({}, t0 + std::chrono::seconds(s));
  }
  // Busy from 10 s on: the stall counts from 10 s, not from the last progress at 0 s.
  const std::map<std::string, Clock::time_point> busy{{"role actor rank 0", t0 + 10s}};
  w.write(false);
  watch.check(busy, t0 + 12s);
  w.write(true);  // progress at 12.5 s restarts the count
  watch.check(busy, t0 + 12500ms);
  w.write(false);
  watch.check(busy, t0 + 15400ms);
  w.write(false);
  const WorkerFailure e = failure_of([&] { watch.check(busy, t0 + 15600ms); });
  EXPECT_EQ(e.worker(), "role actor rank 0");
  EXPECT_THAT(e.what(), HasSubstr("stuck"));
  EXPECT_THAT(e.what(), HasSubstr("no progress for 3.1 s"));
}

TEST(Heartbeat, ResetGivesARestartedWorkerAFreshTimeoutAndPidsMapToWorkers) {
  ScratchDir dir;
  HangWatch watch(2s);
  const Clock::time_point t0 = Clock::now();
  Beats w{dir / "ref.0.beat"};
  watch.add("role reference rank 0", w.file, t0);
  w.write(false);
  watch.check({}, t0);
  EXPECT_EQ(watch.worker_of(4242), "role reference rank 0");
  EXPECT_FALSE(watch.worker_of(4243));
  watch.reset("role reference rank 0", t0 + 1900ms);
  watch.check({}, t0 + 3500ms);  // 1.6 s since the reset
  EXPECT_THROW(watch.check({}, t0 + 4s), WorkerFailure);
}

}  // namespace
}  // namespace troupe::distributed
