// The cluster:/sweep: sections (cluster/launch_sections.h) and launch plans (cluster/launch_plan.h): stripping
// before kind binding, strict binding of cluster:, run names and run directories of sweep elements.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "cluster/launch_plan.h"
#include "cluster/launch_sections.h"
#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string error_of(const std::string& yaml) {
  auto tree = core::parse_config_yaml(yaml, "c.yaml");
  try {
    take_launch_sections(tree);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(LaunchSections, StripsClusterAndSweepAndBindsCluster) {
  auto tree = core::parse_config_yaml(
      "kind: quickstart\ncluster:\n  partition: gpu\n  ntasks: 2\n  time: '01:00:00'\n  extra_sbatch: [--exclusive]\n"
      "sweep:\n  grid:\n    seed: [1, 2]\ntask: {steps: 3}\n",
      "c.yaml");
  const auto s = take_launch_sections(tree);
  EXPECT_EQ(tree.find("cluster"), nullptr);
  EXPECT_EQ(tree.find("sweep"), nullptr);
  EXPECT_NE(tree.find("task"), nullptr);
  ASSERT_TRUE(s.has_cluster);
  EXPECT_EQ(s.cluster.partition, "gpu");
  EXPECT_EQ(s.cluster.ntasks, 2);
  EXPECT_EQ(s.cluster.time, "01:00:00");
  EXPECT_THAT(s.cluster.extra_sbatch, ElementsAre("--exclusive"));
  EXPECT_EQ(s.cluster.signal_before_s, 120);
  EXPECT_TRUE(s.cluster.requeue);
  EXPECT_EQ(s.cluster.srun_mpi, "pmix");
  EXPECT_EQ(s.cluster_origins.at("cluster.partition").describe(), "c.yaml:3:14");
  ASSERT_TRUE(s.has_sweep);
  EXPECT_EQ(s.sweep.size(), 2u);
  EXPECT_THAT(emit_cluster_section(s, true, false), HasSubstr("  partition: gpu"));
}

TEST(LaunchSections, AbsentOrNullSectionsChangeNothing) {
  auto tree = core::parse_config_yaml("kind: quickstart\nsweep: null\n", "c.yaml");
  const auto s = take_launch_sections(tree);
  EXPECT_FALSE(s.has_cluster);
  EXPECT_FALSE(s.has_sweep);
  EXPECT_EQ(tree.find("sweep"), nullptr);
  EXPECT_NE(tree.find("kind"), nullptr);
}

TEST(LaunchSections, UnknownAndInvalidClusterKeysNameFileLine) {
  EXPECT_THAT(error_of("cluster:\n  partiton: gpu\n"),
              AllOf(HasSubstr("c.yaml:2:3"), HasSubstr("unknown key 'cluster.partiton'"),
                    HasSubstr("did you mean 'cluster.partition'")));
  EXPECT_THAT(error_of("cluster:\n  time: 1h\n"),
              AllOf(HasSubstr("c.yaml:2:9"), HasSubstr("cluster.time = 1h"), HasSubstr("Slurm time limit")));
  EXPECT_THAT(error_of("cluster:\n  nodes: 2\n  ntasks: 1\n"), HasSubstr("cluster.ntasks = 1"));
  EXPECT_THAT(error_of("cluster:\n  mem: lots\n"), HasSubstr("cluster.mem"));
  EXPECT_THAT(error_of("cluster:\n  extra_sbatch: [exclusive]\n"), HasSubstr("cluster.extra_sbatch"));
  EXPECT_THAT(error_of("cluster:\n  requeue: maybe\n"), HasSubstr("expected a boolean"));
  EXPECT_THAT(error_of("cluster: [1]\n"), HasSubstr("expected a mapping"));
}

TEST(LaunchSections, SlurmTimeAndMemoryFormats) {
  for (const char* ok : {"30", "30:00", "04:00:00", "2-00", "2-04:00", "2-04:00:00", "infinite", "UNLIMITED"})
    EXPECT_TRUE(valid_slurm_time(ok)) << ok;
  for (const char* bad : {"", "1h", "1:2:3:4", "-1", "2-"}) EXPECT_FALSE(valid_slurm_time(bad)) << bad;
  for (const char* ok : {"4096", "16G", "512m"}) EXPECT_TRUE(valid_slurm_memory(ok)) << ok;
  for (const char* bad : {"0", "16GB", "G", "-1"}) EXPECT_FALSE(valid_slurm_memory(bad)) << bad;
}

class LaunchPlanTest : public ::testing::Test {
 protected:
  testing::ScratchDir dir_{"troupe-launch"};
  std::vector<std::string> seen_;  // run.name of every tree the validator saw
  KindValidator validator() {
    return [this](const core::ConfigNode& t) {
      EXPECT_EQ(t.find("cluster"), nullptr);
      EXPECT_EQ(t.find("sweep"), nullptr);
      const auto* run = t.find("run");
      const auto* name = run ? run->find("name") : nullptr;
      seen_.push_back(name ? name->text() : "");
      const auto* seed = t.find("seed");
      if (seed && seed->text() == "13") throw ConfigError("c.yaml:1:1: seed = 13: expected luck");
    };
  }
};

TEST_F(LaunchPlanTest, SingleRunKeepsItsName) {
  testing::write_file(dir_ / "c.yaml", "kind: quickstart\nrun: {name: one, dir: " + (dir_ / "runs").string() + "}\n");
  const auto plan = plan_launch(dir_ / "c.yaml", {"task.steps=3"}, validator());
  EXPECT_FALSE(plan.sweep);
  EXPECT_EQ(plan.name, "one");
  EXPECT_EQ(plan.root, dir_.path() / "runs" / "one");
  ASSERT_EQ(plan.targets.size(), 1u);
  EXPECT_THAT(plan.targets[0].overrides, ElementsAre("run.name=one"));
  EXPECT_THAT(plan.overrides, ElementsAre("task.steps=3"));
  EXPECT_TRUE(plan.config_file.is_absolute());
}

TEST_F(LaunchPlanTest, EmptyNameBecomesATimestamp) {
  testing::write_file(dir_ / "c.yaml", "kind: quickstart\n");
  const auto plan = plan_launch(dir_ / "c.yaml", {}, validator());
  EXPECT_TRUE(std::regex_match(plan.name, std::regex(R"(\d{8}-\d{6})"))) << plan.name;
  EXPECT_EQ(plan.targets[0].overrides[0], "run.name=" + plan.name);
}

TEST_F(LaunchPlanTest, SweepElementsLiveUnderTheSweepDirectory) {
  testing::write_file(dir_ / "c.yaml",
                      "kind: quickstart\nrun: {name: sw, dir: runs}\nsweep:\n  grid:\n"
                      "    seed: [1, 2]\n");
  const auto plan = plan_launch(dir_ / "c.yaml", {}, validator());
  ASSERT_TRUE(plan.sweep);
  ASSERT_EQ(plan.targets.size(), 2u);
  // run.dir written in the config is relative to the config's directory, not to where troupe runs.
  const std::string sweep_dir = (dir_.path() / "runs" / "sw").string();
  EXPECT_EQ(plan.targets[1].run_name, "1_seed-2");
  EXPECT_EQ(plan.targets[1].run_dir, sweep_dir);
  EXPECT_EQ(plan.targets[1].path, dir_.path() / "runs" / "sw" / "1_seed-2");
  EXPECT_THAT(plan.targets[1].overrides, ElementsAre("seed=2", "run.dir=" + sweep_dir, "run.name=1_seed-2"));
  EXPECT_THAT(seen_, ElementsAre("sw", "0_seed-1", "1_seed-2"));  // the base config, then each element
  EXPECT_EQ(sweep_tsv(plan), "# index\trun\toverrides...\n0\t" + sweep_dir + "/0_seed-1\tseed=1\trun.dir=" + sweep_dir +
                                 "\trun.name=0_seed-1\n1\t" + sweep_dir + "/1_seed-2\tseed=2\trun.dir=" + sweep_dir +
                                 "\trun.name=1_seed-2\n");
  // On the command line it is relative to the working directory (and made absolute).
  const auto cli = plan_launch(dir_ / "c.yaml", {"run.dir=elsewhere"}, validator());
  EXPECT_EQ(cli.targets[1].run_dir, (std::filesystem::current_path() / "elsewhere" / "sw").string());
}

TEST_F(LaunchPlanTest, ABadElementIsNamed) {
  testing::write_file(dir_ / "c.yaml", "kind: quickstart\nrun: {name: sw}\nsweep:\n  grid:\n    seed: [1, 13]\n");
  try {
    plan_launch(dir_ / "c.yaml", {}, validator());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("sweep element 1 (1_seed-13): c.yaml:1:1: seed = 13"));
  }
}

}  // namespace
}  // namespace troupe::cluster
