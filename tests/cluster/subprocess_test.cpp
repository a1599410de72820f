// Subprocesses (cluster/subprocess.h) and the Slurm command wrappers' parsing (cluster/slurm_client.h), without
// Slurm: PATH lookup, captured output, deadlines, and squeue/sacct line parsing.
#include "cluster/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cluster/slurm_client.h"
#include "core/errors.h"

namespace troupe::cluster {
namespace {

using ::testing::HasSubstr;

TEST(Subprocess, FindsProgramsOnPath) {
  const auto sh = find_on_path("sh");
  ASSERT_TRUE(sh.has_value());
  EXPECT_TRUE(sh->is_absolute());
  EXPECT_FALSE(find_on_path("troupe-no-such-program").has_value());
  EXPECT_TRUE(current_executable().is_absolute());
}

TEST(Subprocess, CapturesOutputAndStatus) {
  const auto r = run_command({*find_on_path("sh"), "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  CommandOptions in_tmp;
  in_tmp.cwd = "/tmp";
  EXPECT_EQ(run_command({*find_on_path("pwd")}, in_tmp).out, "/tmp\n");
}

TEST(Subprocess, DeadlineKillsTheCommand) {
  CommandOptions quick;
  quick.timeout = std::chrono::milliseconds(300);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(run_command({*find_on_path("sleep"), "30"}, quick), TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(Subprocess, MissingSlurmCommandSaysWhatToInstall) {
  try {
    slurm_program("sbatch-troupe-missing");
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("sbatch-troupe-missing not found on PATH: install slurm-client"));
  }
}

TEST(Subprocess, ParsesJobStateLines) {
  const auto s =
      parse_job_states("12|RUNNING|0:05|node1\n\n13_1|PENDING|0:00|(Priority)\n14|CANCELLED by 0|1:00|\n", "squeue");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].id, "12");
  EXPECT_EQ(s[0].state, "RUNNING");
  EXPECT_EQ(s[0].elapsed, "0:05");
  EXPECT_EQ(s[0].reason, "node1");
  EXPECT_EQ(s[1].id, "13_1");
  EXPECT_EQ(s[2].state, "CANCELLED");
  EXPECT_EQ(s[2].source, "squeue");
}

}  // namespace
}  // namespace troupe::cluster
