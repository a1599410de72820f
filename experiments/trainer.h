// The one trainer behind `troupe train pretrain|sft|rm|dpo`: its config (one struct for all four kinds, each
// kind reading the sections it needs) and the Objective interface a kind implements. The loop itself (AdamW
// with decay groups, warmup + decay, clipping, accumulation normalised over the whole global batch, bf16
// autocast, evaluation, checkpoints on schedule and on SIGTERM/SIGUSR1/SIGINT, bit-exact resume, data
// parallelism over MPI, progress and HDF5 metrics) lives in trainer.cpp; objectives only say what a batch is
// and what its loss is. Not the PPO loop (rlhf/), which drives several models through workers.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint_state.h"
#include "core/run_config.h"
#include "core/run_log.h"
#include "data/ranking_data.h"
#include "data/text_datasets.h"
#include "distributed/communicator.h"
#include "experiments/registry.h"
#include "models/gpt.h"
#include "models/optim.h"
#include "rlhf/preference_losses.h"

namespace troupe::experiments {

// Which objective `troupe train` runs (the config's `kind:`).
enum class TrainKind { kPretrain, kSft, kRm, kDpo };
constexpr auto config_names(TrainKind) {
  return std::array{std::pair{TrainKind::kPretrain, "pretrain"}, std::pair{TrainKind::kSft, "sft"},
                    std::pair{TrainKind::kRm, "rm"}, std::pair{TrainKind::kDpo, "dpo"}};
}
// Training precision: fp32, or bf16 autocast.
enum class TrainDtype { kFp32, kBf16 };
constexpr auto config_names(TrainDtype) {
  return std::array{std::pair{TrainDtype::kFp32, "fp32"}, std::pair{TrainDtype::kBf16, "bf16"}};
}
// How DPO reduces a response's token log-probs: auto = mean for IPO, sum otherwise.
enum class LogprobReduction { kAuto, kSum, kMean };
constexpr auto config_names(LogprobReduction) {
  return std::array{std::pair{LogprobReduction::kAuto, "auto"}, std::pair{LogprobReduction::kSum, "sum"},
                    std::pair{LogprobReduction::kMean, "mean"}};
}

struct RmSection {
  double margin = 0.0;  // Bradley-Terry margin: loss -log σ(r_chosen - r_rejected - margin)

  template <class V>
  void visit(V& v) {
    v.field("margin", margin, "Bradley-Terry margin (0 = plain BT)");
  }
  void validate(core::ConfigValidator& v) const;
};

struct DpoSection {
  double beta = 0.1;                             // KL strength
  rlhf::DpoLoss loss = rlhf::DpoLoss::kSigmoid;  // dpo | ipo | cdpo
  double label_smoothing = 0.0;                  // cdpo: probability that a label is flipped
  // IPO compares per-token mean log-probs (as the IPO paper and TRL do); sum (DPO's choice) or mean for all.
  LogprobReduction logprobs = LogprobReduction::kAuto;  // auto (ipo: mean, else sum) | sum | mean

  template <class V>
  void visit(V& v) {
    v.field("beta", beta, "KL strength beta");
    v.field("loss", loss, "dpo | ipo | cdpo");
    v.field("label_smoothing", label_smoothing, "cdpo: assumed label-flip probability");
    v.field("logprobs", logprobs, "auto | sum | mean: how response log-probs are reduced");
  }
  void validate(core::ConfigValidator& v) const;
};

struct TrainDataSection {
  std::string
      train;        // pretrain: token file (troupe data prepare); sft: prompt/response JSONL; rm, dpo: preference JSONL
  std::string val;  // same format; empty = no evaluation
  std::string
      tokenizer;  // sft, rm, dpo: tokenizer (any format troupe tokenizer accepts); rm, dpo: optional for *_ids data
  std::string encoding;       // sft: encoding name for a .tiktoken tokenizer
  std::string chat_template;  // sft, rm, dpo: tokenizer_config.json whose chat_template renders conversation lines
  int64_t max_length = 512;   // sft, rm, dpo: prompt + response tokens at most
  data::Overlong overlong = data::Overlong::kTruncate;  // sft, rm, dpo: truncate | drop
  bool pack = false;  // sft: pack each micro-batch's examples into block_size rows (segment-masked attention)
  data::PreferenceFormat format = data::PreferenceFormat::kPairs;  // rm, dpo: pairs | rankings (data/ranking_data.h)
  data::RankingPairs ranking_pairs = data::RankingPairs::kAll;     // dpo on rankings: all | best_vs_rest | adjacent

  template <class V>
  void visit(V& v) {
    v.path("train", train, "training data: token file (pretrain) or JSONL (sft, rm, dpo)");
    v.path("val", val, "evaluation data in the same format; empty = no evaluation");
    v.path("tokenizer", tokenizer, "sft, rm, dpo: tokenizer file (rm, dpo: not needed for *_ids data)");
    v.field("encoding", encoding, "sft: encoding for a .tiktoken tokenizer");
    v.path("chat_template", chat_template,
           "sft, rm, dpo: tokenizer_config.json whose chat_template renders {\"messages\"} and conversational lines");
    v.field("max_length", max_length, "sft, rm, dpo: maximum prompt + response tokens");
    v.field("overlong", overlong, "truncate | drop examples longer than max_length");
    v.field("pack", pack,
            "sft: pack a micro-batch's examples first-fit into block_size rows; attention never crosses an example");
    v.field("format", format,
            "rm, dpo: pairs ({prompt, chosen, rejected}) | rankings ({prompt, responses, ranks}: rm trains the "
            "InstructGPT K-wise loss, dpo the pairs data.ranking_pairs takes)");
    v.field("ranking_pairs", ranking_pairs,
            "dpo with format rankings: all (every non-tied pair) | best_vs_rest | adjacent (rank levels)");
  }
  void validate(core::ConfigValidator& v) const;
};

struct TrainLoopSection {
  int64_t steps = 1000;                  // optimizer steps
  int64_t batch_size = 8;                // sequences per micro-batch
  int64_t grad_accum = 1;                // micro-batches per optimizer step
  int64_t block_size = 0;                // pretrain: tokens per sequence; 0 = model.block_size
  int64_t eval_every = 100;              // evaluate every N steps (and at the end)
  int64_t eval_batches = 20;             // batches per evaluation (0 = the whole validation set)
  int64_t log_every = 10;                // progress line every N steps
  TrainDtype dtype = TrainDtype::kFp32;  // fp32 | bf16 (autocast)

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

// Evaluation-harness tasks run during training (evaluation/harness.h), on rank 0, every `every` steps and at the end;
// their metrics are logged as eval/<task>/<metric> next to the validation loss.
struct TrainEvalSection {
  std::string tasks;         // a task YAML or a suite `tasks: [files]` (lm-eval's format); empty = none
  int64_t every = 0;         // 0 = train.eval_every
  int64_t limit = 0;         // documents per task (0 = all)
  int64_t batch_size = 32;   // continuations / prompts per batch
  int64_t num_fewshot = -1;  // -1 = each task's own
  std::string tokenizer;     // the tokenizer the tasks' text goes through (empty = data.tokenizer)

  template <class V>
  void visit(V& v) {
    v.path("tasks", tasks, "evaluation task YAML or suite run during training (empty = none)");
    v.field("every", every, "run the tasks every N steps (0 = train.eval_every) and at the end");
    v.field("limit", limit, "documents per task (0 = all)");
    v.field("batch_size", batch_size, "continuations / prompts per batch");
    v.field("num_fewshot", num_fewshot, "override the tasks' num_fewshot (-1 = their own)");
    v.path("tokenizer", tokenizer, "tokenizer for the tasks (empty = data.tokenizer)");
  }
  void validate(core::ConfigValidator& v) const;
};

using models::LoraSection;  // models/gpt_config.h

struct TrainingConfig {
  TrainKind kind = TrainKind::kPretrain;
  int64_t seed = 1234;
  core::RunSection run;
  core::RuntimeSection runtime;
  core::CheckpointSection checkpoint;
  models::GptConfig model;
  std::string init_from;  // HF directory (GPT-2 or Llama-family) or Troupe run/checkpoint to start from (its shape
                          // replaces `model`)
  models::OptimConfig optim;
  TrainLoopSection train;
  TrainDataSection data;
  TrainEvalSection eval;
  LoraSection lora;
  models::QuantSection quantization;
  std::vector<std::string> freeze;  // glob patterns of parameters to freeze
  RmSection rm;
  DpoSection dpo;

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "pretrain | sft | rm | dpo");
    v.field("seed", seed, "base seed");
    v.field("run", run, "run directory");
    v.field("runtime", runtime, "threads and logging");
    v.field("checkpoint", checkpoint, "checkpointing");
    v.field("model", model, "GPT shape (ignored with init_from)");
    v.path("init_from", init_from,
           "Hugging Face directory (GPT-2, Llama, Qwen2, Mistral) or Troupe run to start from (empty = random init)");
    v.field("optim", optim, "optimizer and schedule");
    v.field("train", train, "training loop");
    v.field("data", data, "datasets");
    v.field("eval", eval, "evaluation-harness tasks during training");
    v.field("lora", lora, "LoRA adapters");
    v.field("quantization", quantization, "quantized frozen base (QLoRA with lora.rank > 0) or QAT");
    v.field("freeze", freeze, "parameter name patterns to freeze");
    v.field("rm", rm, "reward modelling (kind rm)");
    v.field("dpo", dpo, "direct preference optimisation (kind dpo)");
  }
  void validate(core::ConfigValidator& v) const;
};

// One micro-batch: this rank's rows, and how many units (tokens with a loss, or preference pairs) they hold.
struct MicroBatch {
  virtual ~MicroBatch() = default;
  int64_t units = 0;
};

// Sums over a micro-batch's units. The trainer divides by the units of the whole global batch (all ranks, all
// accumulation steps), so the loss is a true global mean, not a mean of per-micro-batch means.
struct LossSums {
  at::Tensor loss;                        // scalar, differentiable: sum of per-unit losses
  std::map<std::string, double> metrics;  // "train/<name>" sums over units (e.g. correct pairs)
};

// What a training kind supplies. All data-dependent randomness must come from the objective's own seeded
// iterators, whose state data_state() returns, so that resume is bit-exact.
class Objective {
 public:
  virtual ~Objective() = default;
  virtual const char* unit_name() const = 0;  // "tok" | "pairs", for the progress line
  // The next global micro-batch, of which this rank keeps rows [rank*B/W, (rank+1)*B/W).
  virtual std::unique_ptr<MicroBatch> next(int rank, int world) = 0;
  virtual LossSums loss_sums(models::Gpt& model, const MicroBatch& batch) = 0;
  // The step's metrics after the all-reduce, each a sum over the global batch divided by its `units` (all ranks and
  // accumulation steps): an objective whose metric is a ratio of two sums (accuracy over comparisons) finishes it
  // here. Default: logged as they are.
  virtual void finish_step_metrics(std::map<std::string, double>& /*metrics*/, int64_t /*units*/) const {}
  // Evaluation metrics ("eval/loss", ...) on the validation data, in order; empty when there is none.
  virtual std::map<std::string, double> evaluate(models::Gpt& model) = 0;
  virtual std::vector<int64_t> data_state() const = 0;
  virtual void restore_data(const std::vector<int64_t>& state) = 0;
  // Once, after the last step (rank 0): extra state for the final checkpoint and metrics for the log.
  virtual std::map<std::string, double> finish(models::Gpt& /*model*/, core::CheckpointState& /*final*/) { return {}; }
  // Whether the final model is also exported as a Hugging Face directory (<run>/hf: GPT-2, or Llama / Qwen2 / Mistral
  // for arch llama).
  virtual bool export_hf() const { return true; }
};

// Builds the objective once the model exists (the model has the heads `heads` asked for).
struct ObjectiveFactory {
  models::GptHeads heads;
  std::function<std::unique_ptr<Objective>(const TrainingConfig&, models::Gpt&, core::RunLog* log)> make;
};

// Runs a training kind: under mpirun with several ranks, data parallel over MPI_COMM_WORLD (rank 0 owns the run
// directory); else one process. Returns the exit code.
int run_training(const TrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line,
                 const ObjectiveFactory& factory);

// The same on a group the caller made: every rank calls it with its own communicator (rank 0 owns the run
// directory and tells the others where it is), all on `device` for gradients over `comm`. In-process tests run N
// ranks as threads of one process this way (distributed/thread_communicator.h), before the mpirun tests.
int run_training(const TrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line,
                 const ObjectiveFactory& factory, distributed::Communicator& comm, const torch::Device& device);

}  // namespace troupe::experiments
