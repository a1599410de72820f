// The configuration of a PPO run (`kind: ppo`): one struct per subsystem — the models each role starts from, the
// prompts, generation, the reward, every PPO switch, and where the roles run. Each field has a default and a
// one-line doc (`troupe config show CONFIG --docs`); validate() checks ranges and consistency up front.
// Not the loop (rlhf/controller.h) and not the roles (rlhf/roles.h).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/config_binder.h"
#include "core/run_config.h"
#include "models/generation.h"
#include "models/gpt_config.h"
#include "models/optim.h"
#include "models/quant_config.h"
#include "rlhf/advantages.h"
#include "rlhf/kl_controller.h"
#include "rlhf/ppo_math.h"
#include "rlhf/reward_functions.h"

namespace troupe::rlhf {

// Where the KL penalty to the reference goes.
enum class KlMode { kReward, kLoss };
constexpr auto config_names(KlMode) {
  return std::array{std::pair{KlMode::kReward, "reward"}, std::pair{KlMode::kLoss, "loss"}};
}
// How the roles are placed: threads of this process, or worker processes.
enum class PlacementMode { kInproc, kProcesses };
constexpr auto config_names(PlacementMode) {
  return std::array{std::pair{PlacementMode::kInproc, "inproc"}, std::pair{PlacementMode::kProcesses, "processes"}};
}
// The ZeroMQ transport between worker processes.
enum class WorkerTransport { kIpc, kTcp };
constexpr auto config_names(WorkerTransport) {
  return std::array{std::pair{WorkerTransport::kIpc, "ipc"}, std::pair{WorkerTransport::kTcp, "tcp"}};
}
// How asynchronous rollouts' weight pushes travel: through the controller over ZeroMQ, or as a collective broadcast
// from the actor to the rollout worker (a thread group inproc; NCCL between worker processes on GPUs).
enum class WeightSync { kZmq, kCollective };
constexpr auto config_names(WeightSync) {
  return std::array{std::pair{WeightSync::kZmq, "zmq"}, std::pair{WeightSync::kCollective, "collective"}};
}
// Whether worker endpoints speak ZeroMQ CURVE (distributed/transport.h): auto = on for tcp, off for ipc and inproc.
enum class CurveMode { kAuto, kOn, kOff };
constexpr auto config_names(CurveMode) {
  return std::array{std::pair{CurveMode::kAuto, "auto"}, std::pair{CurveMode::kOn, "on"},
                    std::pair{CurveMode::kOff, "off"}};
}
// What starts the worker processes.
enum class WorkerLauncher { kAuto, kLocal, kSrun };
constexpr auto config_names(WorkerLauncher) {
  return std::array{std::pair{WorkerLauncher::kAuto, "auto"}, std::pair{WorkerLauncher::kLocal, "local"},
                    std::pair{WorkerLauncher::kSrun, "srun"}};
}
// What a failed worker or controller leads to.
enum class FaultTolerance { kFail, kRestart };
constexpr auto config_names(FaultTolerance) {
  return std::array{std::pair{FaultTolerance::kFail, "fail"}, std::pair{FaultTolerance::kRestart, "restart"}};
}

// The policy (actor) and everything that starts from it.
struct PolicySection {
  std::string init_from;              // HF GPT-2 dir or Troupe run (e.g. an SFT run); empty = random init with `model`
  models::GptConfig model;            // shape when init_from is empty
  models::OptimConfig optim;          // actor optimizer (the schedule runs over ppo.iterations updates)
  models::LoraSection lora;           // adapters on the actor; with `quantization`, QLoRA as the actor
  models::QuantSection quantization;  // the actor's frozen base (QLoRA, with lora.rank > 0) or QAT

  template <class V>
  void visit(V& v) {
    v.path("init_from", init_from, "HF GPT-2 directory or Troupe run to start from (empty = random init)");
    v.field("model", model, "GPT shape when init_from is empty");
    v.field("optim", optim, "actor optimizer");
    v.field("lora", lora, "LoRA adapters on the actor (rank 0 = full fine-tuning)");
    v.field("quantization", quantization, "quantized frozen base (QLoRA with lora.rank > 0) or QAT");
  }
  void validate(core::ConfigValidator& v) const;
};

struct CriticSection {
  std::string init_from;      // empty = the policy's starting trunk (InstructGPT initialises from the RM/SFT)
  models::OptimConfig optim;  // critic optimizer

  template <class V>
  void visit(V& v) {
    v.path("init_from", init_from, "model to start the critic trunk from (empty = the policy's start)");
    v.field("optim", optim, "critic optimizer");
  }
  void validate(core::ConfigValidator& v) const;
};

struct RewardSection {
  std::string model;  // a Troupe `rm` run directory; empty = the programmatic `function`
  RewardFunctionConfig function;
  std::vector<RewardFunctionConfig> functions;  // several programmatic rewards, summed with their weights
  bool normalize = false;                       // (score - mean) / std with the RM's stored statistics
  double clip = 0.0;                            // clip scores to [-clip, clip] (0 = off)
  double missing_eos_penalty = 0.0;             // added to the score of a response that hit max_new_tokens without EOS
  models::QuantSection quantization;            // the reward model's weights (frozen): e.g. int8 or nf4

  template <class V>
  void visit(V& v) {
    v.path("model", model, "reward-model run directory (empty = programmatic function)");
    v.field("function", function, "programmatic reward");
    v.field("functions", functions, "several programmatic rewards summed with their weights (instead of function)");
    v.field("normalize", normalize, "normalise RM scores with the RM's reward.mean / reward.std");
    v.field("clip", clip, "clip scores to [-clip, clip] (0 = off)");
    v.field("missing_eos_penalty", missing_eos_penalty, "added to the score when a response has no EOS (e.g. -1)");
    v.field("quantization", quantization, "run the reward model quantized (int8, int4, nf4, int8_dynamic)");
  }
  void validate(core::ConfigValidator& v) const;
};

// The reference policy: the starting policy, frozen; it may run quantized.
struct ReferenceSection {
  models::QuantSection quantization;

  template <class V>
  void visit(V& v) {
    v.field("quantization", quantization, "run the reference quantized (int8, int4, nf4, int8_dynamic)");
  }
  void validate(core::ConfigValidator& v) const;
};

struct PromptSection {
  std::string file;  // JSONL with a prompt field (needs tokenizer); empty = synthetic prompts
  std::string field = "prompt";
  std::string tokenizer;         // needed by a file, by the text rewards (to decode) and for EOS
  std::string encoding;          // for a .tiktoken tokenizer
  std::string chat_template;     // tokenizer_config.json rendering {"messages": [...]} lines (file and eval.file)
  int64_t max_length = 64;       // prompts longer than this keep their last max_length tokens
  int64_t synthetic_count = 64;  // synthetic prompts: how many
  int64_t synthetic_length = 2;  // synthetic prompts: tokens each, uniform over [1, vocab) from the seed

  template <class V>
  void visit(V& v) {
    v.path("file", file, "prompt JSONL (empty = synthetic prompts of random ids)");
    v.field("field", field, "JSON field holding the prompt text");
    v.path("tokenizer", tokenizer, "tokenizer for prompt text and reward decoding");
    v.field("encoding", encoding, "encoding for a .tiktoken tokenizer");
    v.path("chat_template", chat_template,
           "tokenizer_config.json whose chat_template renders {\"messages\"} prompt lines (add_generation_prompt)");
    v.field("max_length", max_length, "prompt tokens at most (longer prompts keep their tail)");
    v.field("synthetic_count", synthetic_count, "number of synthetic prompts");
    v.field("synthetic_length", synthetic_length, "tokens per synthetic prompt");
  }
  void validate(core::ConfigValidator& v) const;
};

// DAPO's dynamic sampling and overlong reward shaping (Yu et al. 2025).
struct DynamicSamplingSection {
  bool enabled = false;    // drop groups whose rewards are all equal (no learning signal) and refill the batch
  int64_t max_rounds = 4;  // generation rounds per iteration at most; then train on the groups kept so far

  template <class V>
  void visit(V& v) {
    v.field("enabled", enabled, "drop prompt groups whose rewards are all equal and sample more prompts");
    v.field("max_rounds", max_rounds, "generation rounds per iteration at most (then train on what was kept)");
  }
};

struct OverlongSection {
  int64_t buffer = 0;    // L_cache: the last `buffer` tokens before max_new_tokens are penalised linearly (0 = off)
  double penalty = 1.0;  // the penalty at max_new_tokens (DAPO's soft overlong punishment)

  template <class V>
  void visit(V& v) {
    v.field("buffer", buffer, "soft overlong punishment over the last N tokens before max_new_tokens (0 = off)");
    v.field("penalty", penalty, "penalty reached at max_new_tokens");
  }
};

// Asynchronous rollouts: a rollout worker (role "rollout") samples the next batch while the actor trains on this
// one, with weights at most max_staleness versions behind the policy that trains on them.
struct AsyncSection {
  bool enabled = false;
  int64_t max_staleness = 1;  // k: a sample is trained on by a policy at most k versions newer than its sampler
  double is_cap = 2.0;        // truncated importance sampling: weights min(π_old / π_behaviour, is_cap)
  WeightSync weight_sync = WeightSync::kZmq;  // zmq | collective (NCCL broadcast between GPU worker processes)
  std::string rollout_device;                 // the rollout worker's device (empty = runtime.device)

  template <class V>
  void visit(V& v) {
    v.field("enabled", enabled, "sample with a separate rollout worker while the actor trains");
    v.field("max_staleness", max_staleness,
            "versions a sample may lag the policy that trains on it (0 = synchronous, through the rollout worker)");
    v.field("is_cap", is_cap, "truncated importance sampling cap on pi_old / pi_behaviour");
    v.field("weight_sync", weight_sync,
            "weight pushes: zmq (through the controller) | collective (actor -> rollout broadcast: a thread group "
            "inproc, NCCL between worker processes on GPUs)");
    v.field("rollout_device", rollout_device,
            "the rollout worker's device: auto | cpu | cuda | cuda:N (empty = runtime.device); NCCL needs the actor "
            "and each rollout rank on a GPU of its own");
  }
};

struct PpoSection {
  int64_t iterations = 100;    // rollout + update rounds
  int64_t rollout_batch = 32;  // prompts per rollout
  int64_t group_size = 1;      // G: samples per prompt (GRPO-style estimators need G >= 2)
  AdvantageEstimator advantage_estimator = AdvantageEstimator::kGae;  // gae (critic) | grpo | dr_grpo | rloo | ...
  ImportanceRatio policy_loss = ImportanceRatio::kToken;              // ppo (token ratio) | gspo (sequence ratio)
  LossAggregation loss_aggregation = LossAggregation::kTokenMean;     // how per-token losses are averaged
  double clip_eps_high = 0.0;  // upper clip ε_high (0 = clip_eps; DAPO's clip-higher)
  DynamicSamplingSection dynamic_sampling;
  OverlongSection overlong;
  AsyncSection async_rollouts;
  int64_t minibatch = 8;             // sequences per PPO minibatch (one optimizer step each)
  int64_t micro_batch = 0;           // sequences per forward/backward within a minibatch (0 = all of it)
  bool pack_sequences = false;       // actor and reference: pack rows into block_size rows (segment-masked attention)
  int64_t epochs = 1;                // passes over the rollout per iteration
  double clip_eps = 0.2;             // policy ratio clip ε
  double dual_clip = 0.0;            // dual-clip c > 1 (0 = off)
  double value_clip = 0.2;           // value clip range (0 = off)
  double value_coef = 1.0;           // critic loss scale
  double entropy_coef = 0.0;         // entropy bonus in the policy loss
  double gamma = 1.0;                // GAE discount
  double lambda = 0.95;              // GAE λ
  bool whiten_advantages = true;     // whiten advantages over the global batch
  KlMode kl_mode = KlMode::kReward;  // reward (per-token k1 penalty in the reward) | loss (KL term in the policy loss)
  KlEstimator kl_estimator = KlEstimator::kK1;  // kl_mode loss: k1 | k2 | k3
  KlControlConfig kl;                           // coefficient: fixed or adaptive
  double ptx_coef = 0.0;                        // PPO-ptx: γ times the pretraining loss (0 = off)
  std::string ptx_data;                         // token file for PPO-ptx
  int64_t ptx_batch = 4;                        // ptx windows per minibatch
  bool assert_first_ratio = true;               // fail when the first minibatch's ratio is not 1 (stale logprobs)

  template <class V>
  void visit(V& v) {
    v.field("iterations", iterations, "rollout + update rounds");
    v.field("rollout_batch", rollout_batch, "prompts per rollout");
    v.field("group_size", group_size, "samples per prompt G (grpo, dr_grpo, rloo, reinforce_pp_baseline need >= 2)");
    v.field("advantage_estimator", advantage_estimator,
            "gae (PPO with a critic) | grpo | dr_grpo | rloo | reinforce_pp | reinforce_pp_baseline | remax "
            "(critic-free: no critic worker)");
    v.field("policy_loss", policy_loss, "ppo (token-level ratio) | gspo (sequence-level ratio)");
    v.field("loss_aggregation", loss_aggregation,
            "token_mean | seq_mean_token_mean | seq_mean_token_sum_norm (over the global minibatch)");
    v.field("clip_eps_high", clip_eps_high, "upper clip epsilon (0 = clip_eps; DAPO clip-higher, e.g. 0.28)");
    v.field("dynamic_sampling", dynamic_sampling, "DAPO dynamic sampling");
    v.field("overlong", overlong, "DAPO overlong reward shaping");
    v.field("async", async_rollouts, "asynchronous rollouts with bounded staleness");
    v.field("minibatch", minibatch, "sequences per PPO minibatch");
    v.field("micro_batch", micro_batch,
            "sequences per forward/backward pass within a minibatch, gradients accumulated (0 = the whole minibatch)");
    v.field("pack_sequences", pack_sequences,
            "actor and reference forward passes pack the rows into block_size rows; attention never crosses them");
    v.field("epochs", epochs, "PPO epochs over each rollout");
    v.field("clip_eps", clip_eps, "policy ratio clip epsilon (the lower one when clip_eps_high is set)");
    v.field("dual_clip", dual_clip, "dual-clip constant c > 1 (0 = off)");
    v.field("value_clip", value_clip, "value clip range (0 = off)");
    v.field("value_coef", value_coef, "critic loss coefficient");
    v.field("entropy_coef", entropy_coef, "entropy bonus coefficient");
    v.field("gamma", gamma, "GAE discount");
    v.field("lambda", lambda, "GAE lambda");
    v.field("whiten_advantages", whiten_advantages, "whiten advantages over the global batch");
    v.field("kl_mode", kl_mode, "reward (k1 penalty per token) | loss (KL term in the policy loss)");
    v.field("kl_estimator", kl_estimator, "k1 | k2 | k3 (kl_mode loss)");
    v.field("kl", kl, "KL coefficient control");
    v.field("ptx_coef", ptx_coef, "PPO-ptx pretraining loss coefficient (0 = off)");
    v.path("ptx_data", ptx_data, "token file for PPO-ptx");
    v.field("ptx_batch", ptx_batch, "pretraining windows per minibatch");
    v.field("assert_first_ratio", assert_first_ratio, "check the ratio is 1 on the first minibatch");
  }
  void validate(core::ConfigValidator& v) const;
};

// Where the roles run. inproc: every role on a thread of this process (tests, the quickstart, debugging);
// processes: each role a `troupe worker` process of its own, talking over `transport`.
struct PlacementSection {
  PlacementMode mode = PlacementMode::kInproc;        // inproc | processes
  WorkerTransport transport = WorkerTransport::kIpc;  // processes: ipc | tcp
  std::string bind_host = "127.0.0.1";                // tcp: interface the workers bind
  CurveMode curve = CurveMode::kAuto;                 // processes: CURVE keys per run (auto = on for tcp)
  bool allow_insecure_bind = false;                   // tcp: allow a non-loopback bind_host without CURVE
  double request_timeout_s = 120;                     // a reply later than this means the role is dead or stuck
  double heartbeat_s = 2;                             // processes: liveness check interval while waiting
  std::vector<std::string> colocate;                  // processes: roles sharing one process, e.g. ["reward,reference"]
  int64_t actor_ranks = 1;                            // processes: data-parallel ranks of the actor (an mpirun group)
  int64_t critic_ranks = 1;                           // processes: data-parallel ranks of the critic
  int64_t reference_ranks = 1;                        // processes: ranks of the reference
  int64_t rollout_ranks = 1;  // processes: ranks of the asynchronous rollout worker (each samples a share of the rows)
  WorkerLauncher launcher =
      WorkerLauncher::kAuto;  // processes: local (fork/exec, mpirun for groups) | srun (a job step per group) | auto
  std::map<std::string, std::string>
      srun_args;  // srun: extra srun arguments per process group ("actor", "reward+reference")

  template <class V>
  void visit(V& v) {
    v.field("mode", mode, "inproc (threads in one process) | processes (one troupe worker per role)");
    v.field("transport", transport, "processes: ipc | tcp");
    v.field("bind_host", bind_host, "tcp: address the workers bind (loopback by default)");
    v.field("curve", curve,
            "processes: auto | on | off: encrypt and authenticate worker connections with ZeroMQ CURVE and per-run "
            "keys (auto = on for tcp, off for ipc)");
    v.field("allow_insecure_bind", allow_insecure_bind,
            "tcp: allow a non-loopback bind_host with curve off (anyone who reaches the port can drive the workers)");
    v.field("request_timeout_s", request_timeout_s, "seconds before a request fails (dead or stuck role)");
    v.field("heartbeat_s", heartbeat_s, "seconds between liveness checks of worker processes");
    v.field("colocate", colocate, "processes: comma-separated roles that share one process, e.g. reward,reference");
    v.field("actor_ranks", actor_ranks, "processes: data-parallel ranks of the actor (started with mpirun)");
    v.field("critic_ranks", critic_ranks, "processes: data-parallel ranks of the critic");
    v.field("reference_ranks", reference_ranks, "processes: ranks of the reference");
    v.field("rollout_ranks", rollout_ranks,
            "processes: ranks of the async rollout worker, a data-parallel group that samples a share of each batch "
            "per rank");
    v.field("launcher", launcher,
            "processes: local | srun (one job step per role group) | auto (srun inside a Slurm job)");
    v.field("srun_args", srun_args,
            "srun: extra srun arguments per group label, e.g. {actor: \"--nodes=1 --nodelist=n1\"}");
  }
  // Ranks of `role` (1 for the reward and for any role under inproc).
  int64_t ranks(const std::string& role) const {
    if (mode != PlacementMode::kProcesses) return 1;
    if (role == "actor") return actor_ranks;
    if (role == "critic") return critic_ranks;
    if (role == "reference") return reference_ranks;
    if (role == "rollout") return rollout_ranks;
    return 1;
  }
  // True when worker endpoints use CURVE: worker processes, and curve on (or auto over tcp).
  bool curve_enabled() const {
    if (mode != PlacementMode::kProcesses || curve == CurveMode::kOff) return false;
    return curve == CurveMode::kOn || transport == WorkerTransport::kTcp;
  }
  void validate(core::ConfigValidator& v) const;
};

// Failure detection and recovery. Every worker process publishes a progress heartbeat (distributed/heartbeat.h)
// every placement.heartbeat_s; a worker that stops beating, or that makes no progress for hang_timeout_s while it
// owes a reply, has failed like one that died. fail: the run stops, naming the role, rank and cause (resume it with
// --resume). restart: the controller restarts the failed worker processes, rolls every role back to the last
// checkpoint (one is saved at iteration 0 for this) and goes on; a supervisor process restarts a controller that
// dies. A restarted run ends with the same weights and metrics as one that never failed.
struct FaultSection {
  FaultTolerance tolerance = FaultTolerance::kFail;
  double hang_timeout_s = 60;  // no heartbeat, or no progress while owing a reply, for this long: failed
  int64_t max_restarts = 3;    // restart: recoveries per controller process (and controller restarts) before giving up

  template <class V>
  void visit(V& v) {
    v.field("tolerance", tolerance,
            "fail (stop the run, naming the failed role) | restart (restart it, roll back to the last checkpoint, "
            "go on)");
    v.field("hang_timeout_s", hang_timeout_s,
            "seconds without a heartbeat, or without progress while a reply is owed, before a worker counts as "
            "failed");
    v.field("max_restarts", max_restarts,
            "restart: worker recoveries (and, separately, controller restarts) before the run fails");
  }
  void validate(core::ConfigValidator& v) const;
};

// Periodic greedy evaluation on held-out prompts, scored by the run's reward (the accuracy for a verifiable reward).
struct EvalSection {
  std::string file;         // JSONL prompts (prompts.field, through prompts.tokenizer); empty = no evaluation
  int64_t every = 0;        // evaluate before training, every N iterations and at the end (0 = off)
  int64_t max_prompts = 0;  // the first N prompts of the file (0 = all)
  bool greedy = true;       // greedy responses; false: sampled with `generation` and a fixed seed (pass@1)
  int64_t log_samples = 4;  // training rollouts per iteration written to the log's "samples" table (0 = none)

  template <class V>
  void visit(V& v) {
    v.path("file", file, "held-out prompt JSONL for greedy evaluation (empty = none)");
    v.field("every", every, "evaluate before training, every N iterations and at the end (0 = off)");
    v.field("max_prompts", max_prompts, "evaluate on the first N prompts (0 = all)");
    v.field("greedy", greedy, "greedy responses (false: sampled as in training, with a fixed seed)");
    v.field("log_samples", log_samples,
            "the first N rollouts of each iteration (prompt, completion, reward) into the log's samples table");
  }
  void validate(core::ConfigValidator& v) const;
};

struct PpoConfig {
  std::string kind = "ppo";
  int64_t seed = 1234;
  core::RunSection run;
  core::RuntimeSection runtime;
  core::CheckpointSection checkpoint;
  PolicySection actor;
  CriticSection critic;
  RewardSection reward;
  ReferenceSection reference;
  PromptSection prompts;
  models::GenerationConfig generation;
  PpoSection ppo;
  PlacementSection placement;
  FaultSection fault;
  EvalSection eval;

  template <class V>
  void visit(V& v) {
    v.field("kind", kind, "ppo");
    v.field("seed", seed, "base seed (models, prompts, sampling, minibatch order)");
    v.field("run", run, "run directory");
    v.field("runtime", runtime, "threads and logging");
    v.field("checkpoint", checkpoint, "checkpointing (every N iterations)");
    v.field("actor", actor, "policy model and optimizer");
    v.field("critic", critic, "value model and optimizer");
    v.field("reward", reward, "reward model or function");
    v.field("reference", reference, "the frozen reference policy");
    v.field("prompts", prompts, "prompt data");
    v.field("generation", generation, "rollout sampling");
    v.field("ppo", ppo, "PPO algorithm switches");
    v.field("placement", placement, "where the roles run");
    v.field("fault", fault, "failure detection (heartbeats, hangs) and automatic restart");
    v.field("eval", eval, "greedy evaluation on held-out prompts (eval/reward_mean)");
  }
  void validate(core::ConfigValidator& v) const;
};

}  // namespace troupe::rlhf
