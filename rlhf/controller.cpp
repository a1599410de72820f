// Implementation of rlhf/controller.h.
#include "rlhf/controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/checkpoint_state.h"
#include "core/errors.h"
#include "core/seeding.h"
#include "core/signals.h"
#include "data/text_datasets.h"
#include "distributed/transport.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "rlhf/kl_controller.h"
#include "rlhf/ppo_math.h"
#include "rlhf/protocol.h"
#include "rlhf/roles.h"
#include "rlhf/rollout.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::rlhf {

using distributed::Message;
using distributed::MessageType;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The prompt set: token ids per prompt (a JSONL file through the tokenizer, or synthetic ids from the seed).
std::vector<std::vector<int64_t>> load_prompts(const PpoConfig& c) {
  std::vector<std::vector<int64_t>> prompts;
  const PromptSection& p = c.prompts;
  if (p.file.empty()) {
    std::mt19937_64 rng(core::derive_seed(static_cast<uint64_t>(c.seed), "prompts", 0));
    // Ids of the policy's own vocabulary: the starting model's when the actor starts from one.
    const auto vocab = static_cast<uint64_t>(c.actor.init_from.empty()
                                                 ? c.actor.model.vocab_size
                                                 : models::load_pretrained_gpt(c.actor.init_from)->config().vocab_size);
    for (int64_t i = 0; i < p.synthetic_count; ++i) {
      std::vector<int64_t> row;
      for (int64_t t = 0; t < p.synthetic_length; ++t) row.push_back(1 + static_cast<int64_t>(rng() % (vocab - 1)));
      prompts.push_back(std::move(row));
    }
    return prompts;
  }
  const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(p.tokenizer, p.encoding);
  data::for_each_jsonl_object(p.file, "prompts.file", [&](const nlohmann::json& j, const std::string& where, int64_t) {
    if (!j.contains(p.field) || !j[p.field].is_string())
      throw DataError(where + ": expected an object with a string field '" + p.field + "'");
    const auto ids = tok.encode_ordinary(j[p.field].get<std::string>());
    if (ids.empty()) throw DataError(where + ": empty prompt");
    const size_t from =
        ids.size() > static_cast<size_t>(p.max_length) ? ids.size() - static_cast<size_t>(p.max_length) : 0;
    prompts.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(from), ids.end());
    return true;
  });
  if (prompts.empty()) throw DataError(p.file + ": no prompts");
  return prompts;
}

class PpoController {
 public:
  PpoController(const PpoConfig& c, core::RunSession& session, const ControllerOptions& options)
      : c_(c),
        session_(session),
        options_(options),
        kl_(c.ppo.kl),
        prompts_(load_prompts(c)),
        shuffler_(prompts_.size(), c.ppo.rollout_batch, core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0),
                  /*shuffle=*/true, /*drop_last=*/prompts_.size() >= static_cast<size_t>(c.ppo.rollout_batch)) {
    for (RoleKind role : kRoleKinds) {
      const auto endpoint = options.endpoints.find(role_name(role));
      if (endpoint == options.endpoints.end())
        throw ConfigError(std::string("ppo: no endpoint for role ") + role_name(role));
      clients_[role] =
          std::make_unique<distributed::Client>(std::string(role_name(role)) + " rank 0", endpoint->second);
    }
    // Roles take a while to build their models: wait until each answers a heartbeat.
    for (RoleKind role : kRoleKinds) {
      Message ping;
      ping.type = MessageType::kHeartbeat;
      wait(role, clients_[role]->send(ping));
    }
    if (session.resume_state()) restore(*session.resume_state());
  }

  int run() {
    spdlog::info("ppo: {} iterations of {} rollouts ({} prompts), {} epoch(s) of minibatch {}, KL {} ({} coef {})",
                 c_.ppo.iterations, c_.ppo.rollout_batch, prompts_.size(), c_.ppo.epochs, c_.ppo.minibatch,
                 core::enum_name(c_.ppo.kl_mode), core::enum_name(c_.ppo.kl.type), kl_.value());
    while (iteration_ < c_.ppo.iterations) {
      if (core::stop_requested()) return stop(core::stop_signal());
      iterate();
      if (session_.checkpoint_due(iteration_)) checkpoint();
    }
    if (last_checkpoint_ != iteration_) checkpoint();
    session_.finish(core::RunStatus::Finished, iteration_,
                    fmt::format("finished {} iterations; reward {:.4f}", iteration_, last_reward_));
    shutdown();
    return 0;
  }

 private:
  // Waits for the reply to request `id` of `role`, checking worker liveness every heartbeat.
  Message wait(RoleKind role, uint64_t id) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(c_.placement.request_timeout_s);
    const auto slice = std::chrono::milliseconds(static_cast<int64_t>(c_.placement.heartbeat_s * 1000));
    while (true) {
      if (auto reply = clients_[role]->try_receive(id, slice)) return std::move(*reply);
      if (options_.check_alive) options_.check_alive();
      if (Clock::now() > deadline) {
        throw TimeoutError(fmt::format("{} rank 0 did not answer request {} within placement.request_timeout_s = {} s",
                                       role_name(role), id, c_.placement.request_timeout_s));
      }
    }
  }

  // Sends a typed request to `role` (stamped with the iteration and the policy version the controller holds).
  template <class Request>
  uint64_t send(RoleKind role, const Request& request) {
    Message m = to_message(request);
    m.step = iteration_;
    if (m.weight_version == 0) m.weight_version = version_;
    return clients_[role]->send(std::move(m));
  }

  void iterate() {
    const auto t0 = Clock::now();
    std::map<std::string, double> row;

    // 1. Rollout.
    std::vector<std::vector<int64_t>> batch;
    for (int64_t i : shuffler_.next()) batch.push_back(prompts_[static_cast<size_t>(i)]);
    const models::PaddedBatch padded = models::left_pad(batch, c_.generation.pad_id);
    GenerateRequest gen{
        padded.ids, padded.mask,
        core::derive_seed(static_cast<uint64_t>(c_.seed), "rollout", static_cast<int>(iteration_)) >> 11};
    auto t = Clock::now();
    const Message generated = wait(RoleKind::kActor, send(RoleKind::kActor, gen));
    row["time/generate_s"] = seconds_since(t);
    const GenerateReply rollout = from_message<GenerateReply>(generated);
    if (rollout.weight_version != version_) {
      throw Error(fmt::format("rollout generated with policy version {} but the controller expects version {}",
                              rollout.weight_version, version_));
    }
    const SequenceBatch& seqs = rollout.rollout;
    const torch::Tensor mask = seqs.response_mask;
    const torch::Tensor eos = rollout.rollout.eos;

    // 2. Score, reference, values and the policy's own log-probs, concurrently.
    t = Clock::now();
    const uint64_t id_score = send(RoleKind::kReward, ScoreRequest{seqs, eos});
    const uint64_t id_ref = send(RoleKind::kReference, LogprobsRequest{seqs});
    const uint64_t id_val = send(RoleKind::kCritic, ValuesRequest{seqs});
    const uint64_t id_old = send(RoleKind::kActor, LogprobsRequest{seqs});
    const Message scored = wait(RoleKind::kReward, id_score), ref = wait(RoleKind::kReference, id_ref),
                  val = wait(RoleKind::kCritic, id_val), old = wait(RoleKind::kActor, id_old);
    row["time/score_phase_s"] = seconds_since(t);
    row["time/reward_s"] = reply_seconds(scored);
    row["time/reference_s"] = reply_seconds(ref);
    row["time/critic_values_s"] = reply_seconds(val);
    row["time/actor_logprobs_s"] = reply_seconds(old);
    row["time/actor_generate_s"] = reply_seconds(generated);

    // 3. Rewards, KL, advantages.
    const torch::Tensor raw = from_message<ScoreReply>(scored).scores.to(torch::kFloat32);
    const torch::Tensor scores = adjust_scores(raw, eos, c_.reward.missing_eos_penalty, c_.reward.clip);
    const torch::Tensor old_logp = from_message<LogprobsReply>(old).logprobs;
    const torch::Tensor ref_logp = from_message<LogprobsReply>(ref).logprobs;
    const torch::Tensor values = from_message<ValuesReply>(val).values;
    const torch::Tensor kl_tok = (old_logp - ref_logp) * mask;  // k1 per token
    const double kl_coef = kl_.value();
    const bool in_reward = c_.ppo.kl_mode == KlMode::kReward;
    const torch::Tensor rewards = shape_rewards(scores, kl_tok, mask, in_reward ? kl_coef : 0.0);
    const GaeOut g = gae(rewards, values, mask, c_.ppo.gamma, c_.ppo.lambda);
    torch::Tensor advantages = g.advantages;
    if (c_.ppo.whiten_advantages) advantages = whiten(advantages, mask, /*shift_mean=*/true);
    const double seq_kl = kl_tok.sum(1).mean().item<double>();

    // 4. Update actor and critic concurrently.
    t = Clock::now();
    TrainPolicyRequest train_policy{seqs, old_logp, ref_logp, advantages, kl_coef, iteration_, rollout.weight_version};
    TrainValueRequest train_value{seqs, values, g.returns, iteration_};
    const uint64_t id_pol = send(RoleKind::kActor, train_policy);
    const uint64_t id_vf = send(RoleKind::kCritic, train_value);
    const Message pol_message = wait(RoleKind::kActor, id_pol), vf_message = wait(RoleKind::kCritic, id_vf);
    row["time/train_phase_s"] = seconds_since(t);
    row["time/actor_train_s"] = reply_seconds(pol_message);
    row["time/critic_train_s"] = reply_seconds(vf_message);
    const TrainReply pol = from_message<TrainReply>(pol_message), vf = from_message<TrainReply>(vf_message);
    if (pol.weight_version != version_ + 1) {
      throw Error(fmt::format("actor reports policy version {} after an update from {}", pol.weight_version, version_));
    }
    version_ = pol.weight_version;
    for (const auto& [k, v] : pol.metrics) {
      if (k.rfind("actor/", 0) == 0) row[k] = v;
    }
    for (const auto& [k, v] : vf.metrics) {
      if (k.rfind("critic/", 0) == 0) row[k] = v;
    }
    kl_.update(seq_kl, c_.ppo.rollout_batch);

    // 5. Metrics.
    const torch::Tensor lengths = mask.sum(1);
    row["reward/mean"] = scores.mean().item<double>();
    row["reward/std"] = scores.numel() > 1 ? scores.std().item<double>() : 0.0;
    row["reward/raw_mean"] = raw.mean().item<double>();
    row["kl/mean"] = seq_kl;
    row["kl/coef"] = kl_coef;
    row["critic/explained_variance"] = explained_variance(values, g.returns, mask);
    row["advantages/mean_before_whitening"] = masked_mean(g.advantages, mask).item<double>();
    row["returns/mean"] = masked_mean(g.returns, mask).item<double>();
    row["response/length_mean"] = lengths.mean().item<double>();
    row["response/eos_rate"] = eos.mean().item<double>();
    row["policy/version"] = static_cast<double>(version_);
    ++iteration_;
    row["time/iteration_s"] = seconds_since(t0);
    session_.log().log_scalars(iteration_, row);
    last_reward_ = row["reward/mean"];
    spdlog::info(
        "iter {:>4}/{} reward {:+.4f} kl {:.4f} (coef {:.3f}) ratio [{:.3f}, {:.3f}] clip {:.3f} vloss {:.4f} "
        "len {:.1f} | {:.2f}s",
        iteration_, c_.ppo.iterations, last_reward_, seq_kl, kl_coef, row["actor/ratio_min"], row["actor/ratio_max"],
        row["actor/clip_fraction"], row["critic/value_loss"], row["response/length_mean"], row["time/iteration_s"]);
  }

  // Gathers the actor's and critic's state and saves one checkpoint with the controller's own state.
  void checkpoint() {
    const uint64_t ia = send(RoleKind::kActor, SaveStateRequest{});
    const uint64_t ic = send(RoleKind::kCritic, SaveStateRequest{});
    const RoleState actor = from_message<RoleState>(wait(RoleKind::kActor, ia));
    const RoleState critic = from_message<RoleState>(wait(RoleKind::kCritic, ic));
    core::CheckpointState s;
    s.step = iteration_;
    // The policy is group "model" (what `troupe generate`, evaluation and init_from read); the critic "critic".
    for (const auto& [group, state] :
         {std::pair<std::string, const RoleState*>{"model", &actor}, {"critic", &critic}}) {
      models::add_gpt_state_to_checkpoint(s, group, state->model);
      s.optimizer_blobs[group] = state->optimizer;
    }
    if (actor.ptx) s.extra["ptx_state"] = *actor.ptx;
    s.extra["iteration"] = iteration_;
    s.extra["policy_version"] = version_;
    s.extra["kl_controller"] = kl_.state();
    s.extra["prompt_state"] = shuffler_.state().to_vector();
    session_.save_checkpoint(s);
    last_checkpoint_ = iteration_;
  }

  void restore(const core::CheckpointState& s) {
    iteration_ = s.get<int64_t>("iteration");
    version_ = s.get<int64_t>("policy_version");
    kl_.restore(s.get<std::vector<double>>("kl_controller"));
    shuffler_.restore(data::ShuffleState::from_vector(s.get<std::vector<int64_t>>("prompt_state")));
    for (const auto& [role, group] :
         {std::pair<RoleKind, std::string>{RoleKind::kActor, "model"}, {RoleKind::kCritic, "critic"}}) {
      RoleState state;
      if (s.extra.count(group + ".config") != 0) {
        state.model = models::gpt_state_from_checkpoint(s, group);
      } else {  // a checkpoint from before the critic's description was stored: its tensors are all loading needs
        state.model.tensors = s.tensor_groups.at(group);
      }
      state.optimizer = s.optimizer_blobs.at(group);
      state.weight_version = version_;
      if (role == RoleKind::kActor && s.extra.count("ptx_state")) state.ptx = s.get<std::vector<int64_t>>("ptx_state");
      Message m = to_message(state, /*as_request=*/true);
      m.step = iteration_;
      wait(role, clients_[role]->send(std::move(m)));
    }
    last_checkpoint_ = iteration_;
    spdlog::info("resumed at iteration {} (policy version {}, KL coef {})", iteration_, version_, kl_.value());
  }

  int stop(int sig) {
    if (c_.checkpoint.on_signal && last_checkpoint_ != iteration_) checkpoint();
    session_.finish(core::RunStatus::Interrupted, iteration_,
                    fmt::format("stopped by signal {} at iteration {}", sig, iteration_));
    shutdown();
    return 128 + sig;
  }

  void shutdown() {
    for (RoleKind role : kRoleKinds) {
      Message m;
      m.type = MessageType::kShutdown;
      try {
        clients_[role]->call(std::move(m), std::chrono::seconds(10));
      } catch (const std::exception& e) {
        spdlog::warn("{} did not acknowledge shutdown: {}", role_name(role), e.what());
      }
    }
  }

  const PpoConfig& c_;
  core::RunSession& session_;
  ControllerOptions options_;
  KlController kl_;
  std::vector<std::vector<int64_t>> prompts_;
  data::EpochShuffler shuffler_;
  RoleMap<std::unique_ptr<distributed::Client>> clients_;
  int64_t iteration_ = 0;
  int64_t version_ = 0;
  int64_t last_checkpoint_ = -1;
  double last_reward_ = 0;
};

}  // namespace

int run_ppo_controller(const PpoConfig& config, core::RunSession& session, const ControllerOptions& options) {
  PpoController controller(config, session, options);
  return controller.run();
}

}  // namespace troupe::rlhf
