// `kind: pipeline`: a sequence of troupe commands run one after another as child processes of this run (tokenizer
// → data → pretrain → SFT → labels → RM → PPO → DPO → evaluation in the quickstart), each run in the directory of
// the config file that lists the stages (so relative paths in a command are relative to that file), each stage's output
// in <run>/stages/<name>.log (and echoed), its time and exit status in the run log. "${run}" in a stage's arguments is
// the pipeline's run directory, so every stage writes under it. A stage that finished gets <run>/stages/<name>.done;
// a resumed pipeline (`troupe run CONFIG --resume`) skips those. A failing stage stops the pipeline with its exit
// status and the tail of its log; SIGINT/SIGTERM are forwarded to the running stage. A stage may write a JSON table
// ({"columns": [...], "rows": [[...]...]}, e.g. `troupe eval policies --out`) named by `summary:`; it is printed at
// the end and stored in the run log as table "summary".
#pragma once

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

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "pipeline");
    v.field("seed", seed, "not used by the pipeline itself (stages have their own seeds)");
    v.field("run", run, "run directory (stages write under it)");
    v.field("runtime", runtime, "threads and logging of the pipeline process");
    v.field("checkpoint", checkpoint, "unused (stages checkpoint themselves)");
    v.field("stages", stages, "the commands, in order");
    v.path("summary", summary, "JSON table written by a stage, printed and logged at the end");
  }
  void validate(core::ConfigValidator& v) const;
};

ExperimentKind pipeline_kind();

}  // namespace troupe::experiments
