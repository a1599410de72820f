// `troupe run` of configs with cluster: and sweep: sections, on this machine (no Slurm): the sections are taken
// off before the kind binds the config, a sweep runs its elements one after another, and errors inside the
// sections name file:line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace troupe::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class LocalLaunch : public ::testing::Test {
 protected:
  testing::ProcessResult troupe(std::vector<std::string> args) {
    args.insert(args.begin(), testing::cli_path());
    return testing::run_process(args, std::chrono::seconds(180));
  }
  // A tiny quickstart config in the scratch directory, with `extra` appended.
  fs::path config(const std::string& name, const std::string& extra) {
    const fs::path file = dir_ / (name + ".yaml");
    testing::write_file(file, "base: " + (testing::source_dir() / "experiments/quickstart/config.yaml").string() +
                                  "\nrun:\n  name: " + name + "\n  dir: " + (dir_ / "runs").string() +
                                  "\n  overwrite: false\nruntime: {threads: 1}\ntask: {steps: 20}\n" + extra);
    return file;
  }
  std::string status_of(const fs::path& run) {
    return fs::exists(run / "status") ? testing::read_file(run / "status") : "(none)";
  }
  testing::ScratchDir dir_{"troupe-local-launch"};
};

TEST_F(LocalLaunch, ClusterSectionIsIgnoredByLocalRuns) {
  const auto file = config("with-cluster", "cluster:\n  partition: debug\n  time: '00:05:00'\n");
  const auto run = troupe({"run", file.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(status_of(dir_ / "runs" / "with-cluster"), "finished\n");
  const auto show = troupe({"config", "show", file.string()});
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_THAT(show.output, HasSubstr("cluster:\n  partition: debug"));
  EXPECT_THAT(show.output, HasSubstr("with-cluster.yaml:"));

  const auto bad = config("bad-cluster", "cluster:\n  partiton: debug\n");
  const auto check = troupe({"config", "check", bad.string()});
  EXPECT_EQ(check.exit_code, 2) << check.output;
  EXPECT_THAT(check.output, HasSubstr("bad-cluster.yaml:9:3: unknown key 'cluster.partiton' (did you mean "
                                      "'cluster.partition'?)"));
  const auto bad_run = troupe({"run", bad.string()});
  EXPECT_EQ(bad_run.exit_code, 2) << bad_run.output;
}

TEST_F(LocalLaunch, SweepRunsEachElementAndSkipsFinishedOnes) {
  const auto file = config("sw", "sweep:\n  grid:\n    seed: [1, 2]\n");
  const auto first = troupe({"run", file.string()});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("sweep sw: run 2/2:"));
  EXPECT_THAT(first.output, HasSubstr("sweep sw: 2 runs in " + (dir_ / "runs" / "sw").string()));
  for (const char* label : {"0_seed-1", "1_seed-2"})
    EXPECT_EQ(status_of(dir_ / "runs" / "sw" / label), "finished\n") << label;

  const auto again = troupe({"run", file.string()});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("run 1/2 0_seed-1 already finished, skipped"));
  EXPECT_THAT(again.output, Not(HasSubstr("sweep sw: run 1/2:")));

  // --no-sweep runs the config once, as a Slurm array task does with its element's overrides.
  const auto single = troupe({"run", "--no-sweep", file.string(), "run.name=single"});
  ASSERT_EQ(single.exit_code, 0) << single.output;
  EXPECT_EQ(status_of(dir_ / "runs" / "single"), "finished\n");
}

TEST_F(LocalLaunch, AFailingElementStopsTheSweep) {
  // Element 1 asks to resume a run that does not exist: valid config, runtime error (exit 2).
  const auto file = config("fails",
                           "sweep:\n  list:\n    - {seed: 1}\n    - {seed: 2, run.resume: must}\n"
                           "    - {seed: 3}\n");
  const auto r = troupe({"run", file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("run.resume=must but there is no run"));
  EXPECT_EQ(status_of(dir_ / "runs" / "fails" / "0_seed-1"), "finished\n");
  EXPECT_FALSE(fs::exists(dir_ / "runs" / "fails" / "2_seed-3"));
  EXPECT_THAT(r.output, HasSubstr("not run"));

  const auto bad = config("bad-sweep", "sweep:\n  grid:\n    task.lr: []\n");
  const auto b = troupe({"run", bad.string()});
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_THAT(b.output, HasSubstr("bad-sweep.yaml:10:14: sweep.grid.task.lr: expected a non-empty list"));
  const auto typo = config("typo-sweep", "sweep:\n  grid:\n    task.lrr: [1]\n");
  const auto t = troupe({"run", typo.string()});
  EXPECT_EQ(t.exit_code, 2) << t.output;
  EXPECT_THAT(t.output, HasSubstr("sweep element 0 (0_lrr-1)"));
  EXPECT_THAT(t.output, HasSubstr("did you mean 'task.lr'"));
}

}  // namespace
}  // namespace troupe::cluster
