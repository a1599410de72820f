// Crash test of the run log: a writer process is SIGKILLed mid-run and every step it reported
// as flushed must read back exactly, through RunLogReader and through h5dump.
// Not a unit test of the API (run_log_test.cpp) and not an h5py test (read_run_log_test.py).
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>

#include "core/run_log.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::ScratchDir;

// The last "step N" line the helper printed completely (with its newline), or -1.
int64_t last_printed_step(const std::string& output) {
  static const std::regex line(R"(step (\d+)\n)");
  int64_t last = -1;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it) {
    last = std::stoll((*it)[1].str());
  }
  return last;
}

// Starts the writer helper on `file`, waits until it reports step >= `min_step`, kills it with
// SIGKILL and returns the last step it reported (flushed before it printed).
int64_t run_writer_and_kill(const ScratchDir& dir, const std::filesystem::path& file, int64_t min_step) {
  ChildProcess writer({testing::helper_path("run_log_writer_helper"), file.string()}, dir / "writer.out");
  bool reached = testing::wait_until([&] { return last_printed_step(writer.output()) >= min_step; }, 60s);
  EXPECT_TRUE(reached) << "writer output:\n" << writer.output();
  writer.kill(SIGKILL);
  EXPECT_EQ(writer.wait(10s), 128 + SIGKILL) << writer.output();
  return last_printed_step(writer.output());
}

// The numbers h5dump prints for a 1-D dataset: "DATA {\n (0): 0, 0.5, 1,\n (3): 1.5 ... }",
// wrapped at any column; the "(i):" row prefixes are dropped.
std::vector<double> h5dump_numbers(const std::string& output) {
  std::vector<double> out;
  auto begin = output.find("DATA {");
  if (begin == std::string::npos) return out;
  std::string data = std::regex_replace(output.substr(begin + 6), std::regex(R"(\(\d+\):)"), " ");
  static const std::regex number(R"(-?\d+(\.\d+)?(e[-+]?\d+)?)");
  for (auto it = std::sregex_iterator(data.begin(), data.end(), number); it != std::sregex_iterator(); ++it) {
    out.push_back(std::stod(it->str()));
  }
  return out;
}

class RunLogCrash : public ::testing::Test {
 protected:
  ScratchDir dir_;
  std::filesystem::path file_ = dir_ / "log.h5";
};

TEST_F(RunLogCrash, EveryFlushedStepSurvivesSigkill) {
  int64_t k = run_writer_and_kill(dir_, file_, 200);
  ASSERT_GE(k, 200);
  RunLogReader r(file_);
  EXPECT_EQ(r.config_yaml(), "model:\n  layers: 4\nseed: 1234\n");
  EXPECT_EQ(r.attribute("seed"), "1234");
  EXPECT_EQ(r.metric_names(), (std::vector<std::string>{"loss", "lr"}));

  auto loss = r.metric("loss");
  auto lr = r.metric("lr");
  // Steps 0..K were flushed before "step K" was printed; K+1 may have made it too.
  ASSERT_GE(loss.steps.size(), static_cast<size_t>(k + 1));
  ASSERT_LE(loss.steps.size(), static_cast<size_t>(k + 2));
  ASSERT_GE(lr.steps.size(), static_cast<size_t>(k + 1));
  for (int64_t s = 0; s <= k; ++s) {
    ASSERT_EQ(loss.steps[s], s);
    ASSERT_EQ(loss.values[s], s * 0.5);
    ASSERT_EQ(lr.values[s], 1.0 / static_cast<double>(s + 1));
    ASSERT_GT(loss.wall_time[s], 1.6e9);
  }

  auto samples = r.table("samples");
  ASSERT_GE(samples["step"].size(), static_cast<size_t>(k / 10 + 1));
  for (int64_t row = 0; row <= k / 10; ++row) {
    ASSERT_EQ(samples["step"][row], std::to_string(row * 10));
    ASSERT_EQ(samples["prompt"][row], "p" + std::to_string(row * 10));
    ASSERT_EQ(samples["completion"][row], "c" + std::to_string(row * 10));
  }
  auto events = r.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "start");
}

TEST_F(RunLogCrash, H5dumpReadsTheCrashedFile) {
  if (std::string(TROUPE_H5DUMP).empty()) GTEST_SKIP() << "h5dump not found at configure time";
  int64_t k = run_writer_and_kill(dir_, file_, 200);
  ASSERT_GE(k, 200);
  auto header = testing::run_process({TROUPE_H5DUMP, "-H", file_.string()}, 60s);
  EXPECT_EQ(header.exit_code, 0) << header.output;
  EXPECT_NE(header.output.find("DATASET \"value\""), std::string::npos) << header.output;
  auto values = testing::run_process({TROUPE_H5DUMP, "-d", "/metrics/loss/value", file_.string()}, 60s);
  ASSERT_EQ(values.exit_code, 0) << values.output.substr(0, 2000);
  auto dumped = h5dump_numbers(values.output);
  ASSERT_GE(dumped.size(), static_cast<size_t>(k + 1)) << values.output.substr(0, 2000);
  for (int64_t s = 0; s <= k; ++s) ASSERT_EQ(dumped[s], s * 0.5) << "row " << s;
}

TEST_F(RunLogCrash, CrashedRunResumesWithOpenForAppend) {
  int64_t k = run_writer_and_kill(dir_, file_, 50);
  ASSERT_GE(k, 50);
  {
    auto log = RunLog::open_for_append(file_);
    log.truncate_after(40);  // the last checkpoint was at step 40
    log.log_event(40, "resume", "after SIGKILL");
    log.log_scalars(41, {{"loss", -1.0}});
  }
  RunLogReader r(file_);
  auto loss = r.metric("loss");
  ASSERT_EQ(loss.steps.size(), 42u);
  EXPECT_EQ(loss.steps.back(), 41);
  EXPECT_EQ(loss.values.back(), -1.0);
  EXPECT_EQ(loss.values[40], 20.0);
  EXPECT_EQ(r.metric("lr").steps.size(), 41u);
  EXPECT_EQ(r.table("samples")["step"], (std::vector<std::string>{"0", "10", "20", "30", "40"}));
  ASSERT_EQ(r.events().size(), 2u);
  EXPECT_EQ(r.events()[1].message, "after SIGKILL");
}

}  // namespace
}  // namespace troupe::core
