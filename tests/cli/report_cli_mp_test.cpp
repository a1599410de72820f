// `troupe report` on two real PPO runs (quickstart task, 6 iterations, seeds 7 and 8, ~1 s each):
//  - prints a final-value table naming both runs; --csv writes every logged point and the last ones, equal to the
//    HDF5 logs; the PNGs are real 800x500 images (read back by matplotlib) with both runs' line colours, and
//    plots.json (from the matplotlib objects) gives the title, axis labels and legend;
//  - a missing run exits 2 naming the path, an unknown metric is named with the available ones, and a python
//    without matplotlib names the Debian packages after the CSVs are written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "core/run_log.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;

constexpr int kIterations = 6;

bool have_matplotlib() {
  const std::string python = TROUPE_PYTHON;
  return !python.empty() && run_process({python, "-c", "import matplotlib, h5py"}).exit_code == 0;
}

// Checks each PNG named in plots.json: real image of the recorded size with both runs drawn (matplotlib's first
// two line colours, C0 blue and C1 orange), and title, labels and legend as expected.
constexpr const char* kCheckPlots = R"(
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.image as mpimg
import numpy as np
out, title, metrics = sys.argv[1], sys.argv[2], sys.argv[3:]
plots = json.load(open(out + "/plots.json"))["plots"]
assert [p["metric"] for p in plots] == metrics, plots
for p in plots:
    img = mpimg.imread(out + "/" + p["file"])[..., :3]
    assert img.shape[:2] == (p["height"], p["width"]) == (500, 800), (p, img.shape)
    for colour in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):
        near = (np.abs(img - np.array(colour) / 255.0) < 0.08).all(axis=-1).sum()
        assert near > 200, (p["file"], colour, near)
    assert p["xlabel"] == "step" and p["ylabel"] == p["metric"], p
    assert p["title"] == (title + ": " if title else "") + p["metric"], p
    assert p["legend"] == ["a", "b"], p
    assert p["points"] == {"a": 6, "b": 6}, p
print("checked", len(plots), "plots")
)";

class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ScratchDir>("troupe-report");
    for (const auto& [name, seed] : {std::pair<std::string, int>{"a", 7}, {"b", 8}}) {
      const auto r = run_process(
          {testing::cli_path(), "run", (testing::source_dir() / "experiments/quickstart/ppo.yaml").string(),
           "run.dir=" + (dir_->path() / "runs").string(), "run.name=" + name, "seed=" + std::to_string(seed),
           "placement.mode=inproc", "ppo.iterations=" + std::to_string(kIterations)});
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::string run(const std::string& name) { return (dir_->path() / "runs" / name).string(); }
  static testing::ProcessResult report(std::vector<std::string> extra) {
    std::vector<std::string> argv = {testing::cli_path(), "report", run("a"), run("b")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
  }
  static std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(testing::read_file(p));
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> cells;
      std::istringstream cs(line);
      for (std::string cell; std::getline(cs, cell, ',');) cells.push_back(cell);
      rows.push_back(cells);
    }
    return rows;
  }

  static std::unique_ptr<ScratchDir> dir_;
};
std::unique_ptr<ScratchDir> Report::dir_;

TEST_F(Report, TwoRunsGiveTableCsvsAndReadablePlots) {
  ASSERT_TRUE(have_matplotlib()) << TROUPE_PYTHON << " cannot import matplotlib and h5py: run `make deps`";
  const fs::path out = dir_->path() / "report";
  const auto r = report({"--csv", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Defaults for PPO runs; the table has a column per run and a row per metric.
  const std::vector<std::string> metrics = {"reward/mean", "kl/mean", "actor/policy_loss", "critic/value_loss"};
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(^ +a +b\n)"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\nstatus +finished +finished\n)"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\nlast step +6 +6\n)"))) << r.output;
  for (const auto& m : metrics) EXPECT_THAT(r.output, HasSubstr("\n" + m + " ")) << m;

  // report.csv: every point of every run x metric, values exactly those in the logs.
  const auto rows = read_csv(out / "report.csv");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], (std::vector<std::string>{"run", "metric", "step", "value", "wall_time"}));
  std::map<std::pair<std::string, std::string>, std::vector<double>> points;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 5u) << i;
    points[{rows[i][0], rows[i][1]}].push_back(std::stod(rows[i][3]));
  }
  EXPECT_EQ(points.size(), 2 * metrics.size());
  for (const std::string name : {"a", "b"}) {
    core::RunLogReader log(fs::path(run(name)) / "log.h5");
    for (const auto& m : metrics) EXPECT_EQ((points[{name, m}]), log.metric(m).values) << name << " " << m;
  }
  const auto finals = read_csv(out / "final.csv");
  ASSERT_EQ(finals.size(), 1 + 2 * metrics.size());
  EXPECT_EQ(finals[1], (std::vector<std::string>{"a", "finished", "reward/mean", "6", finals[1][4]}));
  EXPECT_EQ(std::stod(finals[1][4]), (points[{"a", "reward/mean"}].back()));

  // One PNG per metric: PNG signature, not a stub; then matplotlib reads it back.
  for (const std::string file : {"reward_mean.png", "kl_mean.png", "actor_policy_loss.png", "critic_value_loss.png"}) {
    ASSERT_TRUE(fs::exists(out / file)) << file;
    EXPECT_THAT(r.output, HasSubstr((out / file).string()));
    EXPECT_EQ(testing::read_file(out / file).substr(0, 8), "\x89PNG\r\n\x1a\n") << file;
    EXPECT_GT(fs::file_size(out / file), 10'000u) << file;
  }
  std::vector<std::string> check = {TROUPE_PYTHON, "-c", kCheckPlots, out.string(), ""};
  check.insert(check.end(), metrics.begin(), metrics.end());
  const auto c = run_process(check);
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_THAT(c.output, HasSubstr("checked 4 plots"));
}

TEST_F(Report, ChosenMetricsAndTitleReachThePlots) {
  ASSERT_TRUE(have_matplotlib()) << TROUPE_PYTHON << " cannot import matplotlib and h5py: run `make deps`";
  const fs::path out = dir_->path() / "chosen";
  const auto r = report({"--metrics", "actor/entropy,reward/std", "--title", "seed sweep", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("actor/entropy"));
  EXPECT_FALSE(fs::exists(out / "report.csv"));  // no --csv
  const auto c =
      run_process({TROUPE_PYTHON, "-c", kCheckPlots, out.string(), "seed sweep", "actor/entropy", "reward/std"});
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_THAT(c.output, HasSubstr("checked 2 plots"));
}

TEST_F(Report, MissingRunExits2NamingThePath) {
  const std::string missing = (dir_->path() / "runs" / "nope").string();
  const auto r = run_process({testing::cli_path(), "report", run("a"), missing, "--no-plot"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(missing));
  EXPECT_THAT(r.output, HasSubstr("log.h5"));
}

TEST_F(Report, UnknownMetricIsNamedWithTheAvailableOnes) {
  const fs::path out = dir_->path() / "unknown";
  const auto r = report({"--metrics", "reward/mean,no/such_metric", "--csv", "--out", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("'no/such_metric'"));
  EXPECT_THAT(r.output, HasSubstr("available: actor/approx_kl, "));
  EXPECT_FALSE(fs::exists(out / "report.csv"));  // checked before anything is written
}

TEST_F(Report, WithoutMatplotlibNamesTheInstallStepAfterWritingTheCsvs) {
  // No python at all.
  const fs::path out1 = dir_->path() / "nopython";
  auto r = report({"--csv", "--out", out1.string(), "--python", "/nonexistent/python3"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/python3 not found"));
  EXPECT_THAT(r.output, HasSubstr("run `make deps`"));
  EXPECT_TRUE(fs::exists(out1 / "report.csv"));
  EXPECT_TRUE(fs::exists(out1 / "final.csv"));

  // A python that cannot import matplotlib: the venv's with site-packages turned off (-S).
  const fs::path bare = dir_->path() / "bare-python";
  testing::write_file(bare, std::string("#!/bin/sh\nexec ") + TROUPE_PYTHON + " -S \"$@\"\n");
  fs::permissions(bare, fs::perms::owner_all);
  if (run_process({bare.string(), "-c", "import matplotlib"}).exit_code == 0)
    GTEST_SKIP() << "matplotlib importable without site-packages";
  const fs::path out2 = dir_->path() / "nomatplotlib";
  r = report({"--csv", "--out", out2.string(), "--python", bare.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot import"));
  EXPECT_THAT(r.output, HasSubstr("run `make deps`"));
  EXPECT_TRUE(fs::exists(out2 / "report.csv"));
  EXPECT_FALSE(fs::exists(out2 / "reward_mean.png"));
}

}  // namespace
}  // namespace troupe
