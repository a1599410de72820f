// core/subprocess.h: the one process API. Real programs (sh, pwd, sleep) are started; nothing is mocked.
#include "core/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/errors.h"
#include "core/runtime.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

SubprocessOptions sh(const std::string& script) {
  SubprocessOptions o;
  o.argv = {"sh", "-c", script};  // found on PATH
  return o;
}

TEST(Subprocess, FindsProgramsOnPath) {
  const auto found = find_on_path("sh");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->is_absolute());
  EXPECT_FALSE(find_on_path("troupe-no-such-program").has_value());
  EXPECT_TRUE(current_executable().is_absolute());
}

TEST(Subprocess, CapturesOutputAndStatus) {
  const auto r = run_captured(sh("echo out; echo err >&2; exit 3"), 30s);
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  // More output than a pipe holds (64 KiB) arrives whole: the parent drains while it waits.
  const auto big = run_captured(sh("head -c 1000000 /dev/zero | tr '\\0' x"), 30s);
  EXPECT_EQ(big.status, 0);
  EXPECT_EQ(big.out, std::string(1000000, 'x'));
}

TEST(Subprocess, WorkingDirectoryEnvironmentAndMergedStderr) {
  auto o = sh("pwd; echo \"$TROUPE_TEST_VAR\"; echo \"${HOME-unset}\"; echo to-err >&2");
  o.cwd = "/tmp";
  o.env["TROUPE_TEST_VAR"] = "hello";
  o.unset_env = {"HOME"};
  o.err = OutputMode::kStdout;
  const auto r = run_captured(o, 30s);
  EXPECT_EQ(r.out, "/tmp\nhello\nunset\nto-err\n");
  EXPECT_EQ(r.err, "");
}

TEST(Subprocess, OutputToFileTruncatesOrAppends) {
  testing::ScratchDir dir;
  const auto log = dir / "log.txt";
  for (int i = 0; i < 2; ++i) {
    auto o = sh("echo line; echo err >&2");
    o.out = OutputMode::kAppend;
    o.out_file = log;
    o.err = OutputMode::kStdout;
    Subprocess child(o);
    EXPECT_EQ(child.wait_for(30s), 0);
  }
  EXPECT_EQ(testing::read_file(log), "line\nerr\nline\nerr\n");
  auto o = sh("echo fresh");
  o.out = OutputMode::kFile;
  o.out_file = log;
  Subprocess child(o);
  EXPECT_EQ(child.wait_for(30s), 0);
  EXPECT_EQ(testing::read_file(log), "fresh\n");
}

TEST(Subprocess, StartFailuresAreErrorsNamingTheCause) {
  SubprocessOptions missing;
  missing.argv = {"troupe-no-such-program"};
  EXPECT_THAT([&] { Subprocess p(missing); }, ::testing::ThrowsMessage<IoError>(HasSubstr("not found on PATH")));
  SubprocessOptions not_executable;
  not_executable.argv = {"/etc/hostname"};
  EXPECT_THAT([&] { Subprocess p(not_executable); }, ::testing::ThrowsMessage<IoError>(HasSubstr("exec")));
  auto bad_dir = sh("true");
  bad_dir.cwd = "/troupe/no/such/dir";
  EXPECT_THAT([&] { Subprocess p(bad_dir); },
              ::testing::ThrowsMessage<IoError>(HasSubstr("changing to /troupe/no/such/dir")));
}

TEST(Subprocess, DeadlinesAndSignals) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(run_captured(sh("exec sleep 30"), 300ms), TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

  Subprocess child(sh("exec sleep 30"));
  EXPECT_FALSE(child.poll().has_value());
  EXPECT_FALSE(child.wait_for(50ms).has_value());
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_for(10s), 128 + SIGTERM);
  EXPECT_EQ(child.poll(), 128 + SIGTERM);  // the status stays

  Subprocess other(sh("exec sleep 30"));
  EXPECT_EQ(other.kill(), 128 + SIGKILL);
}

TEST(Subprocess, ParentDeathSignalReachesTheChild) {
  // A forked copy of this test starts `sleep` with a parent-death signal; the copy is then killed with SIGKILL (no
  // destructor runs) and the grandchild must die with it.
  testing::ScratchDir dir;
  const auto pid_file = dir / "grandchild.pid";
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    SubprocessOptions o;
    o.argv = {"sleep", "60"};
    o.parent_death_signal = SIGKILL;
    Subprocess grandchild(o);
    testing::write_file(pid_file, std::to_string(grandchild.pid()));
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE(testing::wait_until(
      [&] { return std::filesystem::exists(pid_file) && !testing::read_file(pid_file).empty(); }, 10s));
  const int grandchild = std::stoi(testing::read_file(pid_file));
  ::kill(middle, SIGKILL);
  int status = 0;
  ::waitpid(middle, &status, 0);
  // Dead = gone, or a zombie waiting for its new parent to reap it.
  auto alive = [grandchild] {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return false;
    const size_t close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
  };
  EXPECT_TRUE(testing::wait_until([&] { return !alive(); }, 10s)) << "the grandchild outlived its SIGKILLed parent";
}

TEST(Subprocess, QuotesCommandsForMessages) { EXPECT_EQ(join_command({"a", "b c", "it's"}), "a 'b c' 'it'\\''s'"); }

}  // namespace
}  // namespace troupe::core
