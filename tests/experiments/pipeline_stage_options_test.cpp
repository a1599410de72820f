// `stage_options` of a `kind: pipeline` config (experiments/pipeline.h): how a variant of a base pipeline merges
// options and overrides into the base's stage commands, and which mistakes are config errors up front. The
// pipelines themselves run in tests/cli/pipeline_cli_mp_test.cpp and tests/cli/quickstart_llama_mp_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config_tree.h"
#include "core/errors.h"
#include "experiments/pipeline.h"
#include "tests/support/test_support.h"

namespace troupe::experiments {
namespace pipeline_stage_options_test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const char* kBase =
    "kind: pipeline\n"
    "run: {name: base}\n"
    "stages:\n"
    "  - {name: label, command: [data, label-preferences, --max-prompts, '4000', -o, '${run}/prefs']}\n"
    "  - {name: pretrain, command: [train, pretrain, pretrain.yaml, 'run.dir=${run}']}\n";

PipelineConfig load(const testing::ScratchDir& dir, const std::string& variant) {
  testing::write_file(dir / "base.yaml", kBase);
  testing::write_file(dir / "variant.yaml", "base: base.yaml\n" + variant);
  return core::bind_config<PipelineConfig>(core::load_config(dir / "variant.yaml", {})).value;
}

TEST(PipelineStageOptions, ReplaceOptionValuesAppendMissingOptionsAndOverrides) {
  testing::ScratchDir dir("troupe-stage-options");
  const PipelineConfig c = load(dir,
                                "stage_options:\n"
                                "  label: {--max-prompts: 64, --threads: 1}\n"
                                "  pretrain: {model.arch: llama, train.steps: 5}\n");
  // The option the command has keeps its place with the new value; the one it lacks goes to the end.
  EXPECT_THAT(stage_command(c, c.stages[0]),
              ElementsAre("data", "label-preferences", "--max-prompts", "64", "-o", "${run}/prefs", "--threads", "1"));
  // Overrides are appended in key order, after the stage's own.
  EXPECT_THAT(stage_command(c, c.stages[1]),
              ElementsAre("train", "pretrain", "pretrain.yaml", "run.dir=${run}", "model.arch=llama", "train.steps=5"));
}

TEST(PipelineStageOptions, MergeKeyByKeyAcrossBaseFiles) {
  testing::ScratchDir dir("troupe-stage-options");
  testing::write_file(dir / "middle.yaml", std::string(kBase) + "stage_options: {pretrain: {model.arch: llama}}\n");
  testing::write_file(dir / "top.yaml", "base: middle.yaml\nstage_options: {pretrain: {train.steps: 5}}\n");
  const auto c = core::bind_config<PipelineConfig>(core::load_config(dir / "top.yaml", {})).value;
  EXPECT_THAT(stage_command(c, c.stages[1]),
              ElementsAre("train", "pretrain", "pretrain.yaml", "run.dir=${run}", "model.arch=llama", "train.steps=5"));
  EXPECT_THAT(stage_command(c, c.stages[0]), ElementsAre("data", "label-preferences", "--max-prompts", "4000", "-o",
                                                         "${run}/prefs"));  // no options: unchanged
}

TEST(PipelineStageOptions, UnknownStagesKeysWithEqualsAndOptionsWithoutValuesAreConfigErrors) {
  testing::ScratchDir dir("troupe-stage-options");
  try {
    load(dir, "stage_options: {pretrian: {train.steps: 5}}\n");
    FAIL() << "a misspelt stage name was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage_options = pretrian: expected the name of a stage"));
  }
  EXPECT_THROW(load(dir, "stage_options: {pretrain: {train.steps=5: 1}}\n"), ConfigError);
  // "-o" is followed by a value, but an option that ends the command has none to replace.
  testing::write_file(dir / "base.yaml", std::string(kBase) + "  - {name: flag, command: [eval, --verbose]}\n");
  testing::write_file(dir / "variant.yaml", "base: base.yaml\nstage_options: {flag: {--verbose: x}}\n");
  try {
    core::bind_config<PipelineConfig>(core::load_config(dir / "variant.yaml", {}));
    FAIL() << "an option with no value to replace was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage_options.flag.--verbose: the stage's command ends with --verbose"));
  }
}

}  // namespace pipeline_stage_options_test
}  // namespace troupe::experiments
