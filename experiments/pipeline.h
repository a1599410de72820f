// `kind: pipeline`: a sequence of troupe commands run one after another as child processes of this run (tokenizer
// → data → pretrain → SFT → labels → RM → PPO → DPO → evaluation in the quickstart), each run in the directory of
// the config file that lists the stages (so relative paths in a command are relative to that file), each stage's output
// in <run>/stages/<name>.log (and echoed), its time and exit status in the run log. "${run}" in a stage's arguments is
// the pipeline's run directory, so every stage writes under it. A stage that finished gets <run>/stages/<name>.done;
// a resumed pipeline (`troupe run CONFIG --resume`) skips those. A failing stage stops the pipeline with its exit
// status and the tail of its log; SIGINT/SIGTERM are forwarded to the running stage. A stage may write a JSON table
// ({"columns": [...], "rows": [[...]...]}, e.g. `troupe eval policies --out`) named by `summary:`; it is printed at
// the end and stored in the run log as table "summary". `stage_options` varies a base pipeline's stages without
// restating them (lists replace under `base:`, mappings merge): experiments/quickstart_llama.yaml is the quickstart
// with llama model overrides on its pretrain stage.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/run_config.h"
#include "experiments/registry.h"

namespace troupe::experiments {

struct PipelineStage {
  std::string name;                  // unique; names the log and the .done marker
  std::vector<std::string> command;  // troupe arguments, e.g. [train, sft, experiments/x.yaml, "run.dir=${run}"]

  template <class V>
  void visit(V& v) {
    v.field("name", name, "stage name (unique; [A-Za-z0-9_-])");
    v.field("command", command, "troupe arguments; ${run} = the pipeline's run directory");
  }
};

struct PipelineConfig {
  std::string kind = "pipeline";
  int64_t seed = 0;
  core::RunSection run;
  core::RuntimeSection runtime;
  core::CheckpointSection checkpoint;
  std::vector<PipelineStage> stages;
  std::string summary;  // JSON table a stage writes (${run} allowed); empty = none
  // Per stage name, {key: value} merged into that stage's command: an option key ("--max-prompts") replaces the
  // value that follows it in the command (appended with its value when the command lacks it); any other key is
  // appended as the override "key=value" (train/run stages: the later override wins). Keys apply in sorted order.
  std::map<std::string, std::map<std::string, std::string>> stage_options;

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "pipeline");
    v.field("seed", seed, "not used by the pipeline itself (stages have their own seeds)");
    v.field("run", run, "run directory (stages write under it)");
    v.field("runtime", runtime, "threads and logging of the pipeline process");
    v.field("checkpoint", checkpoint, "unused (stages checkpoint themselves)");
    v.field("stages", stages, "the commands, in order");
    v.path("summary", summary, "JSON table written by a stage, printed and logged at the end");
    v.field("stage_options", stage_options,
            "per stage: {--option: value} replaces an option's value, {key.path: value} appends key.path=value");
  }
  void validate(core::ConfigValidator& v) const;
};

// The stage's command with c.stage_options[stage.name] merged in (see PipelineConfig::stage_options); ${run} is left
// for the caller. ConfigError when an option key is the command's last argument (it has no value to replace).
std::vector<std::string> stage_command(const PipelineConfig& c, const PipelineStage& stage);

ExperimentKind pipeline_kind();

}  // namespace troupe::experiments
