// The Slurm command wrappers (cluster/slurm_client.h) without Slurm: what a missing command says, and squeue/sacct
// line parsing. (The subprocess layer under them is tested in tests/core/subprocess_test.cpp.)
#include "cluster/slurm_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/errors.h"

namespace troupe::cluster {
namespace {

using ::testing::HasSubstr;

TEST(SlurmClient, MissingSlurmCommandSaysWhatToInstall) {
  try {
    slurm_program("sbatch-troupe-missing");
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("sbatch-troupe-missing not found on PATH: install slurm-client"));
  }
}

TEST(SlurmClient, ParsesJobStateLines) {
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
