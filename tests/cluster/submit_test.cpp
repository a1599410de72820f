// Submission without Slurm (cluster/submit.h): what the job runs, overwrite handling at submit time, and the
// records under <run>/slurm/.
#include "cluster/submit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SubmitTest : public ::testing::Test {
 protected:
  LaunchPlan plan(const std::string& extra_yaml, std::vector<std::string> overrides = {}) {
    testing::write_file(dir_ / "c.yaml",
                        "kind: quickstart\nrun: {name: job1, dir: " + (dir_ / "runs").string() + "}\n" + extra_yaml);
    return plan_launch(dir_ / "c.yaml", overrides, [](const core::ConfigNode&) {});
  }
  testing::ScratchDir dir_{"troupe-submit"};
};

TEST_F(SubmitTest, SingleRunJobResumesAndNeverOverwrites) {
  const auto p = plan("cluster: {time: '10'}\n", {"task.steps=5"});
  const auto s = prepare_submission(p, "/bin/troupe", "/work");
  EXPECT_EQ(s.slurm_dir, dir_.path() / "runs" / "job1" / "slurm");
  EXPECT_THAT(s.job.troupe_args, ElementsAre("run", (dir_ / "c.yaml").string(), "task.steps=5", "run.resume=auto",
                                             "run.overwrite=false", "run.name=job1"));
  EXPECT_EQ(s.job.array_size, 0);
  EXPECT_TRUE(s.tsv.empty());
  EXPECT_THAT(s.script, HasSubstr("#SBATCH --time=10\n"));
  EXPECT_THAT(s.script, HasSubstr("#SBATCH --job-name=job1\n"));
}

TEST_F(SubmitTest, SweepBecomesAnArray) {
  const auto p = plan("sweep:\n  grid:\n    seed: [1, 2, 3]\n");
  const auto s = prepare_submission(p, "/bin/troupe", "/work");
  EXPECT_THAT(s.job.troupe_args,
              ElementsAre("run", "--no-sweep", (dir_ / "c.yaml").string(), "run.resume=auto", "run.overwrite=false"));
  EXPECT_EQ(s.job.array_size, 3);
  EXPECT_THAT(s.script, HasSubstr("#SBATCH --array=0-2\n"));
  EXPECT_THAT(s.tsv, HasSubstr("\n2\t" + (dir_ / "runs" / "job1" / "2_seed-3").string() + "\tseed=3\t"));
}

TEST_F(SubmitTest, FinishedRunsNeedOverwrite) {
  const fs::path run = dir_ / "runs" / "job1";
  testing::write_file(run / "status", "finished\n");
  EXPECT_THROW(check_targets(plan(""), true), ConfigError);
  testing::write_file(run / "status", "interrupted\n");
  EXPECT_NO_THROW(check_targets(plan(""), true));  // an unfinished run stays for the job to resume
  EXPECT_TRUE(fs::exists(run / "status"));
  testing::write_file(run / "status", "finished\n");
  EXPECT_NO_THROW(check_targets(plan("", {"run.overwrite=true"}), false));  // dry run: nothing removed
  EXPECT_TRUE(fs::exists(run));
  check_targets(plan("", {"run.overwrite=true"}), true);
  EXPECT_FALSE(fs::exists(run));
}

TEST_F(SubmitTest, RecordsUnderTheSlurmDirectory) {
  const fs::path slurm = dir_ / "slurm";
  EXPECT_TRUE(read_job_ids(slurm).empty());
  fs::create_directories(slurm);
  testing::write_file(slurm / "job_id", "12\n13\n");
  EXPECT_THAT(read_job_ids(slurm), ElementsAre("12", "13"));
  append_event(slurm, "hello");
  ASSERT_EQ(read_events(slurm).size(), 1u);
  EXPECT_THAT(read_events(slurm)[0], HasSubstr("Z troupe: hello"));
}

}  // namespace
}  // namespace troupe::cluster
