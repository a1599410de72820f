// Sweep expansion (cluster/sweep.h): order, labels, value quoting that survives apply_override, and errors that
// name file:line.
#include "cluster/sweep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config_tree.h"
#include "core/errors.h"

namespace troupe::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

core::ConfigNode sweep_of(const std::string& yaml) {
  auto root = core::parse_config_yaml(yaml, "sweep.yaml");
  return *root.find("sweep");
}

std::string sweep_error_of(const std::string& yaml) {
  try {
    expand_sweep(sweep_of(yaml));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Sweep, GridIsACartesianProductWithTheLastKeyFastest) {
  auto e = expand_sweep(sweep_of("sweep:\n  grid:\n    task.lr: [0.1, 0.2]\n    seed: [1, 2, 3]\n"));
  ASSERT_EQ(e.size(), 6u);
  EXPECT_THAT(e[0].overrides, ElementsAre("task.lr=0.1", "seed=1"));
  EXPECT_THAT(e[1].overrides, ElementsAre("task.lr=0.1", "seed=2"));
  EXPECT_THAT(e[2].overrides, ElementsAre("task.lr=0.1", "seed=3"));
  EXPECT_THAT(e[3].overrides, ElementsAre("task.lr=0.2", "seed=1"));
  EXPECT_THAT(e[5].overrides, ElementsAre("task.lr=0.2", "seed=3"));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(e[i].index, i);
  EXPECT_EQ(e[0].label, "0_lr-0.1_seed-1");
  EXPECT_EQ(e[5].label, "5_lr-0.2_seed-3");
}

TEST(Sweep, NestedGridMappingsAreDottedKeys) {
  auto e = expand_sweep(sweep_of("sweep:\n  grid:\n    task:\n      hidden: [8, 16]\n"));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_THAT(e[1].overrides, ElementsAre("task.hidden=16"));
  EXPECT_EQ(e[1].label, "1_hidden-16");
}

TEST(Sweep, ListItemsInOrderAndFlattened) {
  auto e = expand_sweep(sweep_of("sweep:\n  list:\n    - {task.hidden: 32}\n    - task: {hidden: 64, steps: 10}\n"));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_THAT(e[0].overrides, ElementsAre("task.hidden=32"));
  EXPECT_THAT(e[1].overrides, ElementsAre("task.hidden=64", "task.steps=10"));
  EXPECT_EQ(e[1].label, "1_hidden-64_steps-10");
}

TEST(Sweep, ListTimesGridWithTheListOutermost) {
  auto e = expand_sweep(sweep_of("sweep:\n  list:\n    - {a: 1}\n    - {a: 2}\n  grid:\n    b: [x, y]\n"));
  ASSERT_EQ(e.size(), 4u);
  EXPECT_THAT(e[0].overrides, ElementsAre("a=1", "b=x"));
  EXPECT_THAT(e[1].overrides, ElementsAre("a=1", "b=y"));
  EXPECT_THAT(e[2].overrides, ElementsAre("a=2", "b=x"));
  EXPECT_THAT(e[3].overrides, ElementsAre("a=2", "b=y"));
}

TEST(Sweep, ValuesRoundTripThroughApplyOverride) {
  auto e = expand_sweep(
      sweep_of("sweep:\n  list:\n    - {x: 'a: b', y: [1, 2], z: {p: 1}, w: '', v: 'it''s \"q\"', u: -3}\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_THAT(e[0].overrides, ElementsAre("x=\"a: b\"", "y=[1, 2]", "z.p=1", "w=\"\"", "v=\"it's \\\"q\\\"\"", "u=-3"));
  core::ConfigNode tree = core::parse_config_yaml("{}", "t");
  for (const auto& o : e[0].overrides) core::apply_override(tree, o);
  EXPECT_EQ(tree.find("x")->text(), "a: b");
  ASSERT_TRUE(tree.find("y")->is_sequence());
  EXPECT_EQ(tree.find("y")->items()[1].text(), "2");
  EXPECT_EQ(tree.find("z")->find("p")->text(), "1");
  EXPECT_EQ(tree.find("w")->text(), "");
  EXPECT_EQ(tree.find("v")->text(), "it's \"q\"");
  EXPECT_EQ(tree.find("u")->text(), "-3");
}

TEST(Sweep, LabelsAreDirectoryNames) {
  EXPECT_EQ(sweep_label(3, {{"task.lr", "0.001"}, {"seed", "2"}}), "3_lr-0.001_seed-2");
  EXPECT_EQ(sweep_label(0, {{"data.path", "a/b c"}}), "0_path-a_b_c");
  EXPECT_EQ(sweep_label(7, {{"k", std::string(100, 'x')}}).size(), 64u);
  EXPECT_EQ(format_override("run.dir", "runs/a b"), "run.dir=\"runs/a b\"");
  EXPECT_EQ(format_override("run.name", "x-1"), "run.name=x-1");
}

TEST(Sweep, ErrorsNameFileLineAndKey) {
  EXPECT_THAT(sweep_error_of("sweep:\n  grid:\n    task.lr: []\n"),
              AllOf(HasSubstr("sweep.yaml:3:14"), HasSubstr("sweep.grid.task.lr"), HasSubstr("non-empty list")));
  EXPECT_THAT(sweep_error_of("sweep:\n  grid:\n    task.lr: 0.1\n"),
              AllOf(HasSubstr("sweep.yaml:3:14"), HasSubstr("expected a non-empty list")));
  EXPECT_THAT(sweep_error_of("sweep:\n  gird:\n    a: [1]\n"),
              AllOf(HasSubstr("sweep.yaml:2:3"), HasSubstr("unknown key 'sweep.gird'"),
                    HasSubstr("did you mean 'sweep.grid'")));
  EXPECT_THAT(sweep_error_of("sweep:\n  list: []\n"), AllOf(HasSubstr("sweep.yaml:2:9"), HasSubstr("non-empty list")));
  EXPECT_THAT(sweep_error_of("sweep:\n  list:\n    - 3\n"),
              AllOf(HasSubstr("sweep.yaml:3:7"), HasSubstr("sweep.list[0]")));
  EXPECT_THAT(sweep_error_of("sweep:\n  list:\n    - {run.name: x}\n"),
              AllOf(HasSubstr("sweep.yaml:3:8"), HasSubstr("cannot set kind, run.name")));
  EXPECT_THAT(sweep_error_of("sweep:\n  grid:\n    a: [1]\n  list:\n    - {a: 2}\n"),
              AllOf(HasSubstr("sweep.yaml:5:8"), HasSubstr("which sweep.grid also sweeps")));
  EXPECT_THAT(sweep_error_of("sweep:\n  grid:\n    a: [\"x\\ty\"]\n"), HasSubstr("tabs and line breaks"));
  EXPECT_THAT(sweep_error_of("sweep: 3\n"), AllOf(HasSubstr("sweep.yaml:1:8"), HasSubstr("expected a mapping")));
  EXPECT_THAT(sweep_error_of("sweep:\n  grid:\n    'a b': [1]\n"), HasSubstr("expected a dotted config key"));
}

}  // namespace
}  // namespace troupe::cluster
