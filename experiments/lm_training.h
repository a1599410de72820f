// Language-model training as experiment kinds: `pretrain` (causal LM on token files) and `sft` (prompt/response
// JSONL, loss on response tokens only). One trainer for both: AdamW with decay groups, warmup + decay schedule,
// gradient clipping and accumulation (token-mean over the whole accumulated batch), optional bf16 autocast,
// periodic evaluation (loss, perplexity), checkpoints every N steps and on SIGTERM/SIGUSR1/SIGINT, bit-exact
// resume (model, optimizer, RNG, data cursor), a progress line with tokens/s and ETA, and metrics in log.h5.
// At the end the model is exported as a Hugging Face GPT-2 directory (<run>/hf) for `troupe generate`.
// Single process for now; data parallelism over MPI joins with the distributed communicator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/run_config.h"
#include "experiments/registry.h"
#include "models/gpt_config.h"
#include "models/optim.h"

namespace troupe::experiments {

struct LmDataSection {
  std::string train;      // pretrain: token file (troupe data prepare); sft: JSONL with prompt/response
  std::string val;        // same format; empty = no evaluation
  std::string tokenizer;  // sft: tokenizer (any format troupe tokenizer accepts)
  std::string encoding;   // sft: encoding name for a .tiktoken tokenizer
  int64_t max_length = 512;     // sft: prompt + response tokens at most
  std::string overlong = "truncate";  // sft: truncate | drop

  template <class V>
  void visit(V& v) {
    v.field("train", train, "training data: token file (pretrain) or JSONL (sft)");
    v.field("val", val, "evaluation data in the same format; empty = no evaluation");
    v.field("tokenizer", tokenizer, "sft: tokenizer file");
    v.field("encoding", encoding, "sft: encoding for a .tiktoken tokenizer");
    v.field("max_length", max_length, "sft: maximum prompt + response tokens");
    v.field("overlong", overlong, "sft: truncate | drop examples longer than max_length");
  }
  void validate(core::ConfigValidator& v) const;
};

struct LmTrainSection {
  int64_t steps = 1000;       // optimizer steps
  int64_t batch_size = 8;     // sequences per micro-batch
  int64_t grad_accum = 1;     // micro-batches per optimizer step
  int64_t block_size = 0;     // pretrain: tokens per sequence; 0 = model.block_size
  int64_t eval_every = 100;   // evaluate every N steps (and at the end)
  int64_t eval_batches = 20;  // batches per evaluation (0 = the whole validation set)
  int64_t log_every = 10;     // progress line every N steps
  std::string dtype = "fp32"; // fp32 | bf16 (CPU autocast)

  template <class V>
  void visit(V& v) {
    v.field("steps", steps, "optimizer steps");
    v.field("batch_size", batch_size, "sequences per micro-batch");
    v.field("grad_accum", grad_accum, "micro-batches per optimizer step");
    v.field("block_size", block_size, "pretrain: tokens per sequence (0 = model.block_size)");
    v.field("eval_every", eval_every, "evaluate every N steps");
    v.field("eval_batches", eval_batches, "batches per evaluation (0 = all)");
    v.field("log_every", log_every, "progress line every N steps");
    v.field("dtype", dtype, "fp32 | bf16 (autocast)");
  }
  void validate(core::ConfigValidator& v) const;
};

struct LoraSection {
  int64_t rank = 0;  // 0 = no LoRA (full fine-tuning)
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> targets{"*.attn.c_attn"};

  template <class V>
  void visit(V& v) {
    v.field("rank", rank, "LoRA rank (0 = off)");
    v.field("alpha", alpha, "LoRA alpha (scale = alpha / rank)");
    v.field("dropout", dropout, "dropout on the adapter input");
    v.field("targets", targets, "glob patterns over linear layer names");
  }
  void validate(core::ConfigValidator& v) const;
};

struct LmTrainingConfig {
  std::string kind = "pretrain";
  int64_t seed = 1234;
  core::RunSection run;
  core::RuntimeSection runtime;
  core::CheckpointSection checkpoint;
  models::GptConfig model;
  std::string init_from;  // Hugging Face GPT-2 directory to start from (its config replaces `model`)
  models::OptimConfig optim;
  LmTrainSection train;
  LmDataSection data;
  LoraSection lora;
  std::vector<std::string> freeze;  // glob patterns of parameters to freeze

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "pretrain | sft");
    v.field("seed", seed, "base seed");
    v.field("run", run, "run directory");
    v.field("runtime", runtime, "threads and logging");
    v.field("checkpoint", checkpoint, "checkpointing");
    v.field("model", model, "GPT shape (ignored with init_from)");
    v.field("init_from", init_from, "Hugging Face GPT-2 directory to fine-tune (empty = random init)");
    v.field("optim", optim, "optimizer and schedule");
    v.field("train", train, "training loop");
    v.field("data", data, "datasets");
    v.field("lora", lora, "LoRA adapters");
    v.field("freeze", freeze, "parameter name patterns to freeze");
  }
  void validate(core::ConfigValidator& v) const;
};

int run_lm_training(const LmTrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line);

ExperimentKind pretrain_kind();
ExperimentKind sft_kind();

}  // namespace troupe::experiments
