// Tests of distributed/launcher.h with real processes (/bin/sh scripts): output to the log, environment, exit and
// stop detection, restart of a whole process group, and teardown that escalates from SIGTERM to SIGKILL.
// Also what ThreadSanitizer runs for the launcher (`make test-tsan`).
#include "distributed/launcher.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

// Running (or stopped), not exited: a zombie that nobody has reaped yet counts as gone.
bool alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// The file's text, "" while it does not exist yet.
std::string read_or_empty(const std::filesystem::path& file) {
  return std::filesystem::exists(file) ? testing::read_file(file) : std::string();
}

// The failure check() throws, or nullopt when it throws nothing.
std::optional<WorkerFailure> check_failure(const ProcessGroup& group) {
  try {
    group.check();
  } catch (const WorkerFailure& e) {
    return e;
  }
  return std::nullopt;
}

TEST(Launcher, WorkerWritesItsOutputToItsLogWithTheGivenEnvironment) {
  testing::ScratchDir dir;
  ProcessGroup group;
  WorkerProcess& w = group.start("echo", sh("echo \"key=$TROUPE_TEST_SECRET\"; echo err >&2"), dir / "echo.log",
                                 {{"TROUPE_TEST_SECRET", "s3cret"}});
  ASSERT_EQ(w.wait(10s), 0);
  EXPECT_EQ(testing::read_file(dir / "echo.log"), "key=s3cret\nerr\n");
  EXPECT_EQ(tail_lines(dir / "echo.log", 1), "\n  | err");
}

TEST(Launcher, CheckNamesAnExitedWorkerWithItsStatusAndLogTail) {
  testing::ScratchDir dir;
  ProcessGroup group;
  group.start("sleeper", sh("sleep 30"), dir / "sleeper.log");
  WorkerProcess& crasher = group.start("critic", sh("echo 'loading weights'; exit 3"), dir / "critic.log");
  ASSERT_TRUE(crasher.wait(10s).has_value());
  const auto failure = check_failure(group);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->worker(), "critic");
  const std::string what = failure->what();
  EXPECT_NE(what.find("exited with status 3"), std::string::npos) << what;
  EXPECT_NE(what.find("loading weights"), std::string::npos) << what;
}

TEST(Launcher, AStoppedWorkerIsAFailureAtTheSecondCheck) {
  testing::ScratchDir dir;
  ProcessGroup group;
  WorkerProcess& w = group.start("actor", sh("exec sleep 30"), dir / "actor.log");
  EXPECT_FALSE(check_failure(group).has_value());
  w.signal(SIGSTOP);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::ifstream in("/proc/" + std::to_string(w.pid()) + "/stat");
        std::string stat;
        std::getline(in, stat);
        return stat.find(") T ") != std::string::npos;
      },
      10s));
  EXPECT_FALSE(check_failure(group).has_value());  // once could be a moment's stop: not yet
  const auto failure = check_failure(group);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->worker(), "actor");
  EXPECT_EQ(failure->pid(), w.pid());
  EXPECT_NE(std::string(failure->what()).find("is stopped"), std::string::npos);
  w.signal(SIGCONT);
  EXPECT_FALSE(check_failure(group).has_value());  // continued: the count starts again
}

TEST(Launcher, AStoppedChildOfAWorkerIsNamedByItsPid) {
  testing::ScratchDir dir;
  ProcessGroup group;
  // Like an mpirun: the worker's child (a rank) is what stops.
  group.start("group", sh("sleep 30 & echo $! > " + (dir / "child.pid").string() + "; wait"), dir / "group.log");
  ASSERT_TRUE(testing::wait_until([&] { return !read_or_empty(dir / "child.pid").empty(); }, 10s));
  const int child = std::stoi(read_or_empty(dir / "child.pid"));
  ::kill(child, SIGSTOP);
  std::optional<WorkerFailure> failure;
  ASSERT_TRUE(testing::wait_until([&] { return (failure = check_failure(group)).has_value(); }, 10s));
  EXPECT_EQ(failure->worker(), "group");
  EXPECT_EQ(failure->pid(), child);
  ::kill(child, SIGKILL);
}

TEST(Launcher, RestartKillsTheWholeProcessGroupAndStartsTheSameCommandAgain) {
  testing::ScratchDir dir;
  ProcessGroup group;
  const std::string pids = (dir / "pids").string();
  WorkerProcess& first =
      group.start("rank-group", sh("echo start >> " + pids + "; sleep 30 & echo $! >> " + pids + "; wait"),
                  dir / "w.log", {{"TROUPE_TEST_ENV", "kept"}});
  const int first_pid = first.pid();
  ASSERT_TRUE(testing::wait_until([&] { return read_or_empty(dir / "pids").size() > 6; }, 10s));
  const int first_child = std::stoi(read_or_empty(dir / "pids").substr(6));
  ::kill(first_child, SIGSTOP);  // a stopped rank must go too
  WorkerProcess& second = group.restart("rank-group");
  EXPECT_NE(second.pid(), first_pid);
  EXPECT_EQ(second.env().at("TROUPE_TEST_ENV"), "kept");
  EXPECT_TRUE(testing::wait_until([&] { return !alive(first_child) && !alive(first_pid); }, 10s));
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const std::string text = read_or_empty(dir / "pids");
        return text.find("start", 1) != std::string::npos;
      },
      10s));
  EXPECT_FALSE(check_failure(group).has_value());
  EXPECT_THROW(group.restart("nobody"), Error);
}

TEST(Launcher, TerminateEscalatesToSigkillForAWorkerThatIgnoresSigterm) {
  testing::ScratchDir dir;
  int stubborn_pid = 0;
  int polite_pid = 0;
  const auto begin = std::chrono::steady_clock::now();
  {
    ProcessGroup group;
    stubborn_pid =
        group.start("stubborn", sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"), dir / "stubborn.log")
            .pid();
    polite_pid = group.start("polite", sh("exec sleep 30"), dir / "polite.log").pid();
    ASSERT_TRUE(testing::wait_until([&] { return read_or_empty(dir / "stubborn.log") == "ready\n"; }, 10s));
    group.terminate(300ms);
    EXPECT_FALSE(alive(stubborn_pid));
    EXPECT_FALSE(alive(polite_pid));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 20s);
}

}  // namespace
}  // namespace troupe::distributed
