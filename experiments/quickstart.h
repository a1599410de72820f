// The quickstart experiment: a small MLP regression trained end to end through the whole
// run spine (config, run directory, HDF5 log, checkpoints, bit-exact resume, signals).
// A stand-in until the RLHF quickstart exists; not a language model.
#pragma once

#include <cstdint>
#include <string>

#include "core/run_config.h"
#include "experiments/registry.h"

namespace troupe::experiments {

// The regression task: y = sin(x·w1) + 0.5·(x·w2) + noise, x ~ N(0, I).
struct QuickstartTask {
  int features = 16;             // input dimension
  int hidden = 64;               // MLP hidden width (two hidden layers, GELU)
  double dropout = 0.1;          // dropout after each hidden layer (uses the torch RNG)
  int64_t train_samples = 4096;  // training set size
  int64_t eval_samples = 512;    // held-out set size
  double noise = 0.1;            // std of the label noise
  int64_t batch_size = 64;       // examples per step
  int64_t steps = 300;           // optimizer steps
  double lr = 3e-3;              // peak AdamW learning rate
  double weight_decay = 0.01;    // AdamW decoupled weight decay
  int64_t warmup_steps = 20;     // linear warmup, then cosine decay to 10% of lr
  int64_t eval_every = 50;       // evaluate on the held-out set every N steps
  int64_t log_every = 25;        // print a progress line every N steps (metrics are logged every step)
  int64_t sample_every = 100;    // log a table of predictions every N steps

  template <class V>
  void visit(V& v) {
    v.field("features", features, "input dimension");
    v.field("hidden", hidden, "MLP hidden width (two hidden layers, GELU)");
    v.field("dropout", dropout, "dropout after each hidden layer");
    v.field("train_samples", train_samples, "training set size");
    v.field("eval_samples", eval_samples, "held-out set size");
    v.field("noise", noise, "std of the label noise");
    v.field("batch_size", batch_size, "examples per step");
    v.field("steps", steps, "optimizer steps");
    v.field("lr", lr, "peak AdamW learning rate");
    v.field("weight_decay", weight_decay, "AdamW decoupled weight decay");
    v.field("warmup_steps", warmup_steps, "linear warmup steps before cosine decay");
    v.field("eval_every", eval_every, "evaluate on the held-out set every N steps");
    v.field("log_every", log_every, "print a progress line every N steps");
    v.field("sample_every", sample_every, "log a table of predictions every N steps");
  }
  void validate(core::ConfigValidator& v) const;
};

struct QuickstartConfig {
  std::string kind = "quickstart";  // experiment kind
  int64_t seed = 1234;              // base seed; per-role seeds derive from it
  core::RunSection run;
  core::RuntimeSection runtime;
  core::CheckpointSection checkpoint;
  QuickstartTask task;

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "experiment kind");
    v.field("seed", seed, "base seed; per-role and per-rank seeds derive from it");
    v.field("run", run, "run directory");
    v.field("runtime", runtime, "threads and logging");
    v.field("checkpoint", checkpoint, "checkpointing");
    v.field("task", task, "the regression task");
  }
  void validate(core::ConfigValidator& v) const {
    v.nested("run", run);
    v.nested("runtime", runtime);
    v.nested("checkpoint", checkpoint);
    v.nested("task", task);
  }
};

// Runs (or resumes) the quickstart; returns 0 when finished, 128+signal when stopped.
int run_quickstart(const QuickstartConfig& config, const std::string& resolved_yaml, const std::string& command_line);

ExperimentKind quickstart_kind();

}  // namespace troupe::experiments
