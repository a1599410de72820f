// Implementation of rlhf/ppo_config.h: range and consistency checks.
#include "rlhf/ppo_config.h"

#include <cmath>
#include <sstream>
#include <string>

#include "core/device_spec.h"
#include "distributed/worker_launch.h"
#include "rlhf/role_kind.h"

namespace troupe::rlhf {

void PolicySection::validate(core::ConfigValidator& v) const {
  if (init_from.empty()) v.nested("model", model);
  v.nested("optim", optim);
  v.nested("lora", lora);
  v.nested("quantization", quantization);
  v.require(!quantization.enabled() || quantization.qat || lora.rank > 0, "quantization.scheme", quantization.scheme,
            "none unless lora.rank > 0 (QLoRA: the quantized weights are frozen) or quantization.qat is true");
}

void CriticSection::validate(core::ConfigValidator& v) const { v.nested("optim", optim); }

void RewardSection::validate(core::ConfigValidator& v) const {
  if (model.empty() && functions.empty()) v.nested("function", function);
  v.require(functions.empty() || !function.type, "function.type", std::string("set"),
            "unset when reward.functions lists the rewards");
  v.require(functions.empty() || model.empty(), "functions", functions.size(), "empty with a reward model");
  for (size_t i = 0; i < functions.size(); ++i) v.nested("functions[" + std::to_string(i) + "]", functions[i]);
  v.require(model.empty() ? !normalize : true, "normalize", normalize, "false for a programmatic reward");
  v.require(clip >= 0, "clip", clip, "a number >= 0 (0 = off)");
  v.require(std::isfinite(missing_eos_penalty), "missing_eos_penalty", missing_eos_penalty, "a finite number");
  v.nested("quantization", quantization);
  v.require(!quantization.qat, "quantization.qat", quantization.qat, "false: the reward model is frozen");
  v.require(!quantization.enabled() || !model.empty(), "quantization.scheme", quantization.scheme,
            "none for a programmatic reward (there is no model to quantize)");
}

void ReferenceSection::validate(core::ConfigValidator& v) const {
  v.nested("quantization", quantization);
  v.require(!quantization.qat, "quantization.qat", quantization.qat, "false: the reference is frozen");
}

void PromptSection::validate(core::ConfigValidator& v) const {
  v.require(file.empty() || !tokenizer.empty(), "tokenizer", tokenizer, "a tokenizer when prompts.file is set");
  v.require(chat_template.empty() || !tokenizer.empty(), "tokenizer", tokenizer,
            "a tokenizer when prompts.chat_template is set");
  v.require(max_length >= 1, "max_length", max_length, "an integer >= 1");
  v.require(synthetic_count >= 1, "synthetic_count", synthetic_count, "an integer >= 1");
  v.require(synthetic_length >= 1, "synthetic_length", synthetic_length, "an integer >= 1");
}

void PpoSection::validate(core::ConfigValidator& v) const {
  v.require(iterations >= 1, "iterations", iterations, "an integer >= 1");
  v.require(rollout_batch >= 1, "rollout_batch", rollout_batch, "an integer >= 1");
  v.require(group_size >= 1, "group_size", group_size, "an integer >= 1");
  v.require(!needs_groups(advantage_estimator) || group_size >= 2, "group_size", group_size,
            std::string("an integer >= 2 for advantage_estimator ") + core::enum_name(advantage_estimator));
  v.require(minibatch >= 1 && minibatch <= rollout_batch * group_size, "minibatch", minibatch,
            "an integer in [1, rollout_batch * group_size] (sequences per optimizer step)");
  v.require(clip_eps_high >= 0, "clip_eps_high", clip_eps_high, "a number >= 0 (0 = clip_eps)");
  v.require(dual_clip == 0 || policy_loss == ImportanceRatio::kToken, "dual_clip", dual_clip,
            "0 with policy_loss gspo (dual clip bounds token ratios)");
  v.require(!dynamic_sampling.enabled || group_size >= 2, "dynamic_sampling.enabled", dynamic_sampling.enabled,
            "false unless group_size >= 2 (it drops groups whose rewards are all equal)");
  v.require(dynamic_sampling.max_rounds >= 1, "dynamic_sampling.max_rounds", dynamic_sampling.max_rounds,
            "an integer >= 1");
  v.require(async_rollouts.max_staleness >= 0, "async.max_staleness", async_rollouts.max_staleness, "an integer >= 0");
  v.require(async_rollouts.is_cap > 0, "async.is_cap", async_rollouts.is_cap, "a number > 0");
  v.require(async_rollouts.rollout_device.empty() || core::valid_device_spec(async_rollouts.rollout_device),
            "async.rollout_device", async_rollouts.rollout_device,
            std::string("empty (runtime.device) or ") + core::device_spec_expected());
  v.require(overlong.buffer >= 0, "overlong.buffer", overlong.buffer, "an integer >= 0 (0 = off)");
  v.require(overlong.penalty >= 0, "overlong.penalty", overlong.penalty, "a number >= 0");
  v.require(micro_batch >= 0, "micro_batch", micro_batch, "an integer >= 0 (0 = the whole minibatch)");
  v.require(epochs >= 1, "epochs", epochs, "an integer >= 1");
  v.require(clip_eps > 0, "clip_eps", clip_eps, "a number > 0");
  v.require(dual_clip == 0 || dual_clip > 1, "dual_clip", dual_clip, "0 (off) or a number > 1");
  v.require(value_clip >= 0, "value_clip", value_clip, "a number >= 0 (0 = off)");
  v.require(value_coef > 0, "value_coef", value_coef, "a number > 0");
  v.require(entropy_coef >= 0, "entropy_coef", entropy_coef, "a number >= 0");
  v.require(gamma > 0 && gamma <= 1, "gamma", gamma, "a number in (0, 1]");
  v.require(lambda >= 0 && lambda <= 1, "lambda", lambda, "a number in [0, 1]");
  v.nested("kl", kl);
  v.require(ptx_coef >= 0, "ptx_coef", ptx_coef, "a number >= 0");
  v.require(ptx_coef == 0 || !ptx_data.empty(), "ptx_data", ptx_data, "a token file when ptx_coef > 0");
  v.require(ptx_batch >= 1, "ptx_batch", ptx_batch, "an integer >= 1");
}

void EvalSection::validate(core::ConfigValidator& v) const {
  v.require(every >= 0, "every", every, "an integer >= 0 (0 = off)");
  v.require(every == 0 || !file.empty(), "file", file, "a prompt JSONL when every > 0");
  v.require(max_prompts >= 0, "max_prompts", max_prompts, "an integer >= 0 (0 = all)");
  v.require(log_samples >= 0, "log_samples", log_samples, "an integer >= 0 (0 = none)");
}

void PlacementSection::validate(core::ConfigValidator& v) const {
  v.require(!bind_host.empty(), "bind_host", bind_host, "an interface address");
  v.require(curve != CurveMode::kOn || mode == PlacementMode::kProcesses, "curve", std::string("on"),
            "auto or off unless mode is processes (inproc roles have no connection to protect)");
  const bool exposed = mode == PlacementMode::kProcesses && transport == WorkerTransport::kTcp &&
                       !distributed::is_loopback_host(bind_host);
  v.require(!exposed || curve_enabled() || allow_insecure_bind, "bind_host", bind_host,
            "a loopback address (127.0.0.1) while curve is off; a bind reachable from other hosts needs curve on "
            "(or auto), or allow_insecure_bind=true");
  v.require(request_timeout_s > 0, "request_timeout_s", request_timeout_s, "a number > 0");
  v.require(heartbeat_s > 0, "heartbeat_s", heartbeat_s, "a number > 0");
  for (const auto& [key, n] : {std::pair<const char*, int64_t>{"actor_ranks", actor_ranks},
                               {"critic_ranks", critic_ranks},
                               {"reference_ranks", reference_ranks},
                               {"rollout_ranks", rollout_ranks}}) {
    v.require(n >= 1, key, n, "an integer >= 1");
    v.require(n == 1 || mode == PlacementMode::kProcesses, key, n, "1 unless mode is processes");
  }
  for (const std::string& group : colocate) {
    std::stringstream ss(group);
    bool ok = !group.empty();
    for (std::string name; std::getline(ss, name, ',');) {
      ok = ok && is_role_name(name) && ranks(name) == 1;
    }
    v.require(ok, "colocate", group,
              "comma-separated role names (actor, critic, reward, reference, rollout), each of one rank");
  }
}

void FaultSection::validate(core::ConfigValidator& v) const {
  v.require(hang_timeout_s > 0, "hang_timeout_s", hang_timeout_s, "a number > 0");
  v.require(max_restarts >= 0, "max_restarts", max_restarts, "an integer >= 0");
}

void PpoConfig::validate(core::ConfigValidator& v) const {
  v.require(kind == "ppo", "kind", kind, "ppo");
  v.nested("run", run);
  v.nested("runtime", runtime);
  v.nested("checkpoint", checkpoint);
  v.nested("actor", actor);
  v.nested("critic", critic);
  v.nested("reward", reward);
  v.nested("reference", reference);
  v.nested("prompts", prompts);
  v.nested("generation", generation);
  v.nested("ppo", ppo);
  v.nested("placement", placement);
  v.nested("fault", fault);
  v.nested("eval", eval);
  v.require(fault.hang_timeout_s >= 2 * placement.heartbeat_s, "fault.hang_timeout_s", fault.hang_timeout_s,
            "at least twice placement.heartbeat_s (a worker beats once per heartbeat)");
  v.require(eval.every == 0 || !prompts.tokenizer.empty(), "prompts.tokenizer", prompts.tokenizer,
            "a tokenizer for eval.file");
  v.require(generation.num_beams == 1, "generation.num_beams", generation.num_beams, "1 (PPO samples rollouts)");
  v.require(ppo.advantage_estimator != AdvantageEstimator::kRemax || generation.do_sample, "generation.do_sample",
            generation.do_sample, "true for remax (its baseline is the greedy response)");
  v.require(ppo.overlong.buffer <= generation.max_new_tokens, "ppo.overlong.buffer", ppo.overlong.buffer,
            "at most generation.max_new_tokens");
  v.require(placement.rollout_ranks == 1 || ppo.async_rollouts.enabled, "placement.rollout_ranks",
            placement.rollout_ranks, "1 unless ppo.async.enabled (there is no rollout worker otherwise)");
  if (!needs_critic(ppo.advantage_estimator)) {
    for (const std::string& group : placement.colocate) {
      v.require(("," + group + ",").find(",critic,") == std::string::npos, "placement.colocate", group,
                std::string("no critic: advantage_estimator ") + core::enum_name(ppo.advantage_estimator) +
                    " runs without one");
    }
  }
}

}  // namespace troupe::rlhf
