// Implementation of rlhf/controller.h.
#include "rlhf/controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "core/checkpoint_manager.h"
#include "core/checkpoint_state.h"
#include "core/errors.h"
#include "core/progress.h"
#include "core/seeding.h"
#include "core/signals.h"
#include "data/chat_data.h"
#include "data/text_datasets.h"
#include "distributed/transport.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "rlhf/advantages.h"
#include "rlhf/kl_controller.h"
#include "rlhf/ppo_math.h"
#include "rlhf/protocol.h"
#include "rlhf/roles.h"
#include "rlhf/rollout.h"
#include "rlhf/sample_log.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::rlhf {

using distributed::Message;
using distributed::MessageType;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Token ids per prompt of a JSONL prompt file (through prompts.tokenizer, the last prompts.max_length tokens of each),
// at most `limit` of them (0 = all). A line is text under prompts.field or a conversation under "messages", rendered
// by prompts.chat_template with the generation prompt (data/chat_data.h).
std::vector<std::vector<int64_t>> load_prompt_file(const PromptSection& p, const std::string& file,
                                                   const std::string& what, int64_t limit = 0) {
  std::vector<std::vector<int64_t>> prompts;
  const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(p.tokenizer, p.encoding);
  const auto chat_template = data::load_chat_template(p.chat_template);
  data::for_each_jsonl_ordered(file, what, [&](const nlohmann::ordered_json& j, const std::string& where, int64_t) {
    const data::PromptText prompt =
        data::prompt_of_line(j, p.field, chat_template.get(), "prompts.chat_template", where);
    const auto ids = data::encode_prompt(tok, prompt);
    if (ids.empty()) throw DataError(where + ": empty prompt");
    const size_t from =
        ids.size() > static_cast<size_t>(p.max_length) ? ids.size() - static_cast<size_t>(p.max_length) : 0;
    prompts.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(from), ids.end());
    return limit == 0 || static_cast<int64_t>(prompts.size()) < limit;
  });
  if (prompts.empty()) throw DataError(file + ": no prompts");
  return prompts;
}

// The prompt set: token ids per prompt (a JSONL file through the tokenizer, or synthetic ids from the seed).
std::vector<std::vector<int64_t>> load_prompts(const PpoConfig& c) {
  const PromptSection& p = c.prompts;
  if (!p.file.empty()) return load_prompt_file(p, p.file, "prompts.file");
  std::vector<std::vector<int64_t>> prompts;
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

// The tokenizer that decodes logged samples: the prompts' tokenizer when samples are logged and there is one.
std::optional<tokenizers::BpeTokenizer> sample_tokenizer(const PpoConfig& c) {
  if (c.eval.log_samples == 0 || c.prompts.tokenizer.empty()) return std::nullopt;
  return tokenizers::open_tokenizer(c.prompts.tokenizer, c.prompts.encoding);
}

class PpoController {
 public:
  PpoController(const PpoConfig& c, core::RunSession& session, const ControllerOptions& options)
      : c_(c),
        roles_(active_roles(c)),
        critic_(needs_critic(c.ppo.advantage_estimator)),
        session_(session),
        options_(options),
        kl_(c.ppo.kl),
        prompts_(load_prompts(c)),
        eval_prompts_(c.eval.every > 0 ? load_prompt_file(c.prompts, c.eval.file, "eval.file", c.eval.max_prompts)
                                       : std::vector<std::vector<int64_t>>{}),
        sample_tok_(sample_tokenizer(c)),
        shuffler_(prompts_.size(), c.ppo.rollout_batch, core::derive_seed(static_cast<uint64_t>(c.seed), "data", 0),
                  /*shuffle=*/true, /*drop_last=*/prompts_.size() >= static_cast<size_t>(c.ppo.rollout_batch)) {
    endpoints_ = options.endpoints;
    // Connecting waits until every role has built its models; a worker may fail meanwhile, as later.
    guarded([this] {
      connect(endpoints_);
      if (session_.resume_state() && last_checkpoint_ < 0) restore(*session_.resume_state());
    });
  }

  int run() {
    spdlog::info(
        "ppo: {} iterations of {} prompts x {} samples ({} prompts), advantages {}, {} epoch(s) of minibatch {}, KL {} "
        "({} coef {}){}",
        c_.ppo.iterations, c_.ppo.rollout_batch, c_.ppo.group_size, prompts_.size(),
        core::enum_name(c_.ppo.advantage_estimator), c_.ppo.epochs, c_.ppo.minibatch, core::enum_name(c_.ppo.kl_mode),
        core::enum_name(c_.ppo.kl.type), kl_.value(), critic_ ? "" : ", no critic");
    if (iteration_ == 0 && c_.eval.every > 0) {
      std::map<std::string, double> row;
      evaluate(row);
      session_.log().log_scalars(0, row);
      spdlog::info("eval before training: reward {:.4f} on {} prompts", row["eval/reward_mean"], eval_prompts_.size());
    }
    // fault.tolerance restart rolls back to the last checkpoint: there is always one, from iteration 0 on.
    if (restarting() && last_checkpoint_ < 0) guarded([this] { checkpoint(); });
    while (iteration_ < c_.ppo.iterations) {
      if (core::stop_requested()) return stop(core::stop_signal());
      guarded([this] {
        iterate();
        if (session_.checkpoint_due(iteration_)) checkpoint();
      });
    }
    if (last_checkpoint_ != iteration_) guarded([this] { checkpoint(); });
    session_.finish(core::RunStatus::Finished, iteration_,
                    fmt::format("finished {} iterations; reward {:.4f}", iteration_, last_reward_));
    shutdown();
    return 0;
  }

 private:
  // ---- requests, liveness and recovery ----

  bool restarting() const { return c_.fault.tolerance == FaultTolerance::kRestart && options_.restart; }

  // A client per role for `endpoints`, then a heartbeat answered by each (roles take a while to build their models).
  void connect(const std::map<std::string, std::string>& endpoints) {
    outstanding_.clear();
    for (RoleKind role : roles_) {
      const auto endpoint = endpoints.find(role_name(role));
      if (endpoint == endpoints.end()) throw ConfigError(std::string("ppo: no endpoint for role ") + role_name(role));
      clients_[role] = std::make_unique<distributed::Client>(std::string(role_name(role)) + " rank 0", endpoint->second,
                                                             distributed::DecodeLimits{}, options_.curve);
    }
    // Workers publish their endpoints once their models are built, so a heartbeat is answered at once — or, when a
    // worker is stuck, found owed like any other request.
    std::vector<std::pair<RoleKind, uint64_t>> pings;
    for (RoleKind role : roles_) {
      Message ping;
      ping.type = MessageType::kHeartbeat;
      pings.emplace_back(role, post(role, ping));
    }
    for (const auto& [role, id] : pings) wait(role, id);
  }

  // Sends `m` to `role` and notes that the role owes a reply from now on.
  uint64_t post(RoleKind role, Message m) {
    const uint64_t id = clients_[role]->send(std::move(m));
    outstanding_[role][id] = Clock::now();
    return id;
  }

  // Roles that owe replies -> since when (their oldest request not answered yet: a reply that has arrived but is not
  // collected, while the controller waits on another role, is no longer owed).
  std::map<std::string, Clock::time_point> busy() {
    std::map<std::string, Clock::time_point> out;
    for (const auto& [role, requests] : outstanding_) {
      for (const auto& [id, since] : requests) {
        if (clients_[role]->answered(id)) continue;
        auto [it, fresh] = out.emplace(role_name(role), since);
        if (!fresh) it->second = std::min(it->second, since);
      }
    }
    return out;
  }

  // Waits for the reply to request `id` of `role`, checking worker liveness and progress every heartbeat.
  Message wait(RoleKind role, uint64_t id) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(c_.placement.request_timeout_s);
    const auto slice = std::chrono::milliseconds(static_cast<int64_t>(c_.placement.heartbeat_s * 1000));
    while (true) {
      core::progress_tick();  // the controller's loop turning, as its controller.beat shows
      if (auto reply = clients_[role]->try_receive(id, slice)) {
        outstanding_[role].erase(id);
        return std::move(*reply);
      }
      if (options_.check_alive) options_.check_alive(busy());
      if (Clock::now() > deadline) {
        throw TimeoutError(fmt::format("{} rank 0 did not answer request {} within placement.request_timeout_s = {} s",
                                       role_name(role), id, c_.placement.request_timeout_s));
      }
    }
  }

  // Runs `step`; under fault.tolerance restart, a failed worker (dead, stopped, frozen, stuck, or silent past the
  // request timeout) is restarted and every role rolled back to the last checkpoint instead of ending the run.
  // Anything else (a role's own error reply, a bug, a signal) still ends it.
  template <class Step>
  void guarded(const Step& step) {
    bool failing = false;
    std::set<std::string> suspects;
    std::string failed, cause;
    std::exception_ptr error;
    // No worker named: every role that owes a reply is a suspect.
    const auto blame_owing = [&](const std::exception& e) {
      suspects.clear();
      for (const auto& [role, requests] : outstanding_)
        if (!requests.empty()) suspects.insert(role_name(role));
      failed.clear();
      cause = e.what();
      error = std::current_exception();
    };
    while (true) {
      try {
        if (failing) recover(suspects, failed, cause);  // may itself meet a failed worker: then round again
        failing = false;
        step();
        return;
      } catch (const WorkerFailure& e) {
        suspects.clear();
        failed = e.worker();
        cause = e.what();
        error = std::current_exception();
      } catch (const TimeoutError& e) {
        blame_owing(e);
      } catch (const ProtocolError& e) {  // a reply cut short by a dying peer
        blame_owing(e);
      } catch (const distributed::RemoteError& e) {
        // A role's own error reply ends the run, unless one of its workers is found dead or stopped within a few
        // heartbeats (a rank died under a collective and rank 0 reported the collective's failure).
        error = std::current_exception();
        failed.clear();
        if (!restarting() || !options_.check_alive) throw;
        const auto slice = std::chrono::milliseconds(static_cast<int64_t>(c_.placement.heartbeat_s * 1000));
        try {
          for (int i = 0; i < 3; ++i) {
            std::this_thread::sleep_for(slice);
            options_.check_alive({});
          }
        } catch (const WorkerFailure& f) {
          suspects.clear();
          failed = f.worker();
          cause = std::string(e.what()) + "; " + f.what();
        }
        if (failed.empty()) throw;
      }
      if (!restarting() || restarts_ >= c_.fault.max_restarts) {
        if (restarting()) spdlog::error("fault: giving up after {} restarts (fault.max_restarts)", restarts_);
        std::rethrow_exception(error);
      }
      failing = true;
    }
  }

  // Restarts the failed workers, reconnects to every role and rolls the run back to its last checkpoint.
  void recover(const std::set<std::string>& suspects, const std::string& failed, const std::string& cause) {
    const auto t = Clock::now();
    ++restarts_;
    spdlog::warn("fault {}/{} at iteration {}: {}", restarts_, c_.fault.max_restarts, iteration_, cause);
    session_.log().log_event(iteration_, "fault", cause);
    endpoints_ = options_.restart(suspects, failed);
    connect(endpoints_);
    pending_.reset();
    weight_group_formed_ = false;
    rollout_version_ = 0;
    const std::optional<core::CheckpointState> state = session_.checkpoints().load_latest();
    if (state) {
      session_.log().truncate_after(state->step);
      restore(*state);
    } else if (iteration_ != 0) {  // before the first checkpoint nothing has trained yet: there is nothing to undo
      throw Error("fault recovery: no checkpoint to roll back to in " + session_.directory().path().string());
    }
    const std::string done = fmt::format("recovered from fault {} in {:.2f} s: rolled back to iteration {}", restarts_,
                                         seconds_since(t), iteration_);
    session_.log().log_event(iteration_, "restart", done);
    spdlog::warn("{}", done);
  }

  // Sends a typed request to `role` (stamped with the iteration and the policy version the controller holds).
  template <class Request>
  uint64_t send(RoleKind role, const Request& request) {
    Message m = to_message(request);
    m.step = iteration_;
    if (m.weight_version == 0) m.weight_version = version_;
    return post(role, std::move(m));
  }

  // One generation round: rollout_batch prompts, each repeated group_size times (rows g·G … g·G + G − 1), sampled
  // by the actor at the controller's policy version and scored. scores are adjusted (missing-EOS penalty, clip,
  // overlong shaping); raw are the reward role's.
  // pending_score: the id of a score request still in flight (scores and raw are then undefined until
  // finish_score), so that the reward role scores while the reference, the actor and the critic do their passes.
  struct Scored {
    Rollout rollout;
    torch::Tensor scores, raw;
    std::optional<uint64_t> pending_score;
  };

  // The generation request of round `round` for the batch trained in iteration `iteration`: the next
  // rollout_batch prompts, each repeated group_size times.
  GenerateRequest next_request(int64_t iteration, int64_t round) {
    std::vector<std::vector<int64_t>> batch;
    for (int64_t i : shuffler_.next()) {
      for (int64_t g = 0; g < c_.ppo.group_size; ++g) batch.push_back(prompts_[static_cast<size_t>(i)]);
    }
    const models::PaddedBatch padded = models::left_pad(batch, c_.generation.pad_id);
    // Round 0 draws the seed PPO always used; extra rounds (dynamic sampling) their own.
    const uint64_t seed =
        round == 0 ? core::derive_seed(static_cast<uint64_t>(c_.seed), "rollout", static_cast<int>(iteration))
                   : core::derive_seed(static_cast<uint64_t>(c_.seed), "rollout_round",
                                       static_cast<int>(iteration * 1000 + round));
    return GenerateRequest{padded.ids, padded.mask, seed >> 11};
  }

  Rollout rollout_round(int64_t round, std::map<std::string, double>& row) {
    return c_.ppo.async_rollouts.enabled ? async_rollout(round, row) : generate(next_request(iteration_, round), row);
  }

  Scored sample_round(int64_t round, std::map<std::string, double>& row) {
    Scored out;
    out.rollout = rollout_round(round, row);
    std::tie(out.scores, out.raw) = score(out.rollout, row);
    return out;
  }

  // ---- asynchronous rollouts ----
  // The rollout worker samples batch i + 1 while the actor trains on batch i, with weights at most max_staleness
  // versions older than the policy that will train on the batch: before a generation starts, the actor's weights are
  // pushed (versioned, checksummed) when the rollout worker's would be too old — the worker never produces samples
  // that would be too stale. No generation runs across a checkpoint, so scheduled checkpoints resume bit-exactly.

  // Pushes the actor's current weights to the rollout worker: through this process over ZeroMQ (weight_sync: zmq), or
  // as a broadcast from the actor to every rollout rank (weight_sync: collective; the group is formed on the first
  // push). Either way versioned and checksummed.
  void push_weights(std::map<std::string, double>& row) {
    const auto t = Clock::now();
    rollout_version_ =
        c_.ppo.async_rollouts.weight_sync == WeightSync::kCollective ? broadcast_weights() : send_weights();
    row["time/weight_push_s"] += seconds_since(t);
    row["async/weight_pushes"] += 1;
  }

  // The actor's weights (weights-only save) loaded into the rollout worker through this process; their version.
  int64_t send_weights() {
    const RoleState state =
        from_message<RoleState>(wait(RoleKind::kActor, send(RoleKind::kActor, SaveStateRequest{true})));
    Message m = to_message(state, /*as_request=*/true);
    m.step = iteration_;
    wait(RoleKind::kRollout, post(RoleKind::kRollout, std::move(m)));
    return state.weight_version;
  }

  // The actor's weights broadcast to every rollout rank over the weight group (formed on the first call); their
  // version.
  int64_t broadcast_weights() {
    if (!weight_group_formed_) {
      // Inproc roles are threads of this process: a named thread group. Worker processes: an NCCL unique id made by
      // the actor. The actor is rank 0, the rollout worker's ranks 1 .. N.
      static std::atomic<int> groups{0};
      const std::string id =
          c_.placement.mode == PlacementMode::kInproc
              ? fmt::format("thread:weights:{}:{}", ::getpid(), groups++)
              : from_message<WeightGroupId>(wait(RoleKind::kActor, send(RoleKind::kActor, WeightGroupIdRequest{}))).id;
      const int64_t size = 1 + c_.placement.ranks(role_name(RoleKind::kRollout));
      const uint64_t a = send(RoleKind::kActor, JoinWeightGroupRequest{id, 0, size});
      const uint64_t r = send(RoleKind::kRollout, JoinWeightGroupRequest{id, 1, size});
      wait(RoleKind::kActor, a);
      wait(RoleKind::kRollout, r);
      weight_group_formed_ = true;
    }
    const uint64_t a = send(RoleKind::kActor, BroadcastWeightsRequest{version_});
    const uint64_t r = send(RoleKind::kRollout, BroadcastWeightsRequest{version_});
    const BroadcastWeightsReply sent = from_message<BroadcastWeightsReply>(wait(RoleKind::kActor, a));
    const BroadcastWeightsReply got = from_message<BroadcastWeightsReply>(wait(RoleKind::kRollout, r));
    if (got.checksum != sent.checksum || got.version != sent.version) {
      throw ProtocolError(
          fmt::format("weight broadcast: the actor sent version {} with checksum {}, the rollout "
                      "worker holds version {} with checksum {}",
                      sent.version, sent.checksum, got.version, got.checksum));
    }
    return sent.version;
  }

  // Starts the generation of round `round` of the batch that the policy of version `train_version` will train on
  // (iteration `iteration`), pushing weights first when the worker's are more than max_staleness versions older.
  // The first generation after a checkpoint always samples with the checkpointed weights (pushed now): a run resumed
  // from that checkpoint, whose rollout worker holds nothing to begin with, then samples exactly as this one does.
  void start_generation(int64_t iteration, int64_t round, int64_t train_version, std::map<std::string, double>& row) {
    const bool after_checkpoint = iteration == last_checkpoint_ && round == 0;
    if (after_checkpoint || train_version - rollout_version_ > c_.ppo.async_rollouts.max_staleness) push_weights(row);
    shuffler_before_pending_ = shuffler_.state();
    pending_ = send(RoleKind::kRollout, next_request(iteration, round));
    pending_version_ = rollout_version_;
  }

  // Round `round` of this iteration's batch from the rollout worker: the one started during the previous iteration
  // (round 0), or started now. The same prompts and seeds as the synchronous run's rounds.
  Rollout async_rollout(int64_t round, std::map<std::string, double>& row) {
    if (!pending_) start_generation(iteration_, round, version_, row);
    const auto t = Clock::now();
    const Message generated = wait(RoleKind::kRollout, *pending_);
    pending_.reset();
    row["time/wait_rollout_s"] += seconds_since(t);
    row["time/rollout_generate_s"] += reply_seconds(generated);
    const GenerateReply reply = from_message<GenerateReply>(generated);
    const int64_t staleness = version_ - reply.weight_version;
    if (reply.weight_version != pending_version_ || staleness < 0 || staleness > c_.ppo.async_rollouts.max_staleness) {
      throw Error(
          fmt::format("rollout worker sampled with policy version {} (expected {}) for a policy at version {}: "
                      "staleness outside [0, async.max_staleness = {}]",
                      reply.weight_version, pending_version_, version_, c_.ppo.async_rollouts.max_staleness));
    }
    row["async/staleness"] = std::max(row["async/staleness"], static_cast<double>(staleness));  // of the rounds
    return reply.rollout;
  }

  // Overlap: once this iteration's batch is complete, the next iteration's first round is generated during the
  // scoring and training, if its staleness allows and no checkpoint comes between.
  void prefetch_next(std::map<std::string, double>& row) {
    const int64_t next = iteration_ + 1;
    if (c_.ppo.async_rollouts.enabled && c_.ppo.async_rollouts.max_staleness >= 1 && next < c_.ppo.iterations &&
        !session_.checkpoint_due(next)) {
      start_generation(next, 0, version_ + 1, row);
    }
  }

  // The actor's rollout for `request`, checked to come from the controller's policy version.
  Rollout generate(const GenerateRequest& request, std::map<std::string, double>& row) {
    const auto t = Clock::now();
    const Message generated = wait(RoleKind::kActor, send(RoleKind::kActor, request));
    row["time/generate_s"] += seconds_since(t);
    row["time/actor_generate_s"] += reply_seconds(generated);
    const GenerateReply reply = from_message<GenerateReply>(generated);
    if (reply.weight_version != version_) {
      throw Error(fmt::format("rollout generated with policy version {} but the controller expects version {}",
                              reply.weight_version, version_));
    }
    return reply.rollout;
  }

  // {adjusted, raw} scores of a rollout from the reward role: send_score, then finish_score with its id.
  uint64_t send_score(const Rollout& r) { return send(RoleKind::kReward, ScoreRequest{r, r.eos}); }

  std::pair<torch::Tensor, torch::Tensor> score(const Rollout& r, std::map<std::string, double>& row) {
    return finish_score(send_score(r), r, row);
  }

  std::pair<torch::Tensor, torch::Tensor> finish_score(uint64_t id, const Rollout& r,
                                                       std::map<std::string, double>& row) {
    const Message scored = wait(RoleKind::kReward, id);
    row["time/reward_s"] += reply_seconds(scored);
    const torch::Tensor raw = from_message<ScoreReply>(scored).scores.to(torch::kFloat32);
    torch::Tensor scores = adjust_scores(raw, r.eos, c_.reward.missing_eos_penalty, c_.reward.clip);
    if (c_.ppo.overlong.buffer > 0) {
      scores = scores + overlong_shaping(r.response_mask.sum(1), c_.generation.max_new_tokens, c_.ppo.overlong.buffer,
                                         c_.ppo.overlong.penalty);
    }
    return {scores, raw};
  }

  // The iteration's batch: one round, or with dynamic sampling as many rounds as it takes (at most max_rounds) to
  // collect rollout_batch groups whose rewards are not all equal, cut to exactly that many.
  Scored sample_batch(std::map<std::string, double>& row) {
    const int64_t G = c_.ppo.group_size, want = c_.ppo.rollout_batch;
    if (!c_.ppo.dynamic_sampling.enabled) {  // scored concurrently with the score phase's other passes
      Scored s;
      s.rollout = rollout_round(0, row);
      s.pending_score = send_score(s.rollout);
      prefetch_next(row);
      row["sampling/rounds"] = 1;
      row["sampling/groups"] = static_cast<double>(want);
      return s;
    }
    std::vector<Rollout> kept;
    std::vector<torch::Tensor> scores, raw;
    int64_t groups = 0, rounds = 0, drawn = 0;
    while (groups < want && rounds < c_.ppo.dynamic_sampling.max_rounds) {
      const Scored s = sample_round(rounds++, row);
      drawn += s.scores.size(0) / G;
      const torch::Tensor by_group = s.scores.reshape({-1, G});
      const torch::Tensor informative =
          (std::get<0>(by_group.max(1)) != std::get<0>(by_group.min(1))).nonzero().reshape({-1});
      const int64_t take = std::min(informative.size(0), want - groups);
      if (take == 0) continue;
      const torch::Tensor rows =
          (informative.slice(0, 0, take).unsqueeze(1) * G + torch::arange(G, torch::kLong).unsqueeze(0)).reshape({-1});
      kept.push_back(select_rows(s.rollout, rows));
      scores.push_back(s.scores.index_select(0, rows));
      raw.push_back(s.raw.index_select(0, rows));
      groups += take;
    }
    prefetch_next(row);
    row["sampling/rounds"] = static_cast<double>(rounds);
    row["sampling/groups"] = static_cast<double>(groups);
    row["sampling/informative_fraction"] = static_cast<double>(groups) / static_cast<double>(drawn);
    if (groups == 0) {
      throw Error(
          fmt::format("dynamic sampling: every group of {} rounds had equal rewards (no learning signal); raise "
                      "ppo.dynamic_sampling.max_rounds or check the reward",
                      rounds));
    }
    return Scored{concat_rollouts(kept, c_.generation.pad_id), torch::cat(scores), torch::cat(raw), std::nullopt};
  }

  // ReMax's baseline: the score of the greedy response to each row's prompt (one greedy decode per group).
  torch::Tensor greedy_baseline(const Rollout& r, std::map<std::string, double>& row) {
    const int64_t G = c_.ppo.group_size;
    const torch::Tensor firsts = torch::arange(0, r.size(), G, torch::kLong);
    const SequenceBatch prompts = r.select(firsts);
    const int64_t P = r.prompt_length;
    GenerateRequest request{prompts.sequences.slice(1, 0, P), prompts.attention_mask.slice(1, 0, P), 0, true};
    const Rollout greedy = generate(request, row);
    return score(greedy, row).first.repeat_interleave(G);
  }

  // Responses to the held-out prompts (greedy, or sampled with the same seeds at every evaluation), scored by the
  // reward role: eval/reward_mean (the accuracy for a 0/1 verifiable reward), eval/length_mean and eval/eos_rate.
  void evaluate(std::map<std::string, double>& row) {
    const auto t = Clock::now();
    std::map<std::string, double> scratch;  // generation and reward times of the evaluation are not the iteration's
    double reward = 0, length = 0, eos = 0;
    constexpr size_t kChunk = 256;
    for (size_t at = 0; at < eval_prompts_.size(); at += kChunk) {
      const std::vector<std::vector<int64_t>> chunk(
          eval_prompts_.begin() + static_cast<std::ptrdiff_t>(at),
          eval_prompts_.begin() + static_cast<std::ptrdiff_t>(std::min(eval_prompts_.size(), at + kChunk)));
      const models::PaddedBatch padded = models::left_pad(chunk, c_.generation.pad_id);
      const uint64_t seed = core::derive_seed(static_cast<uint64_t>(c_.seed), "eval", static_cast<int>(at)) >> 11;
      const Rollout r = generate(GenerateRequest{padded.ids, padded.mask, seed, c_.eval.greedy}, scratch);
      reward += score(r, scratch).second.sum().item<double>();
      length += r.response_mask.sum().item<double>();
      eos += r.eos.sum().item<double>();
    }
    const auto n = static_cast<double>(eval_prompts_.size());
    row["eval/reward_mean"] = reward / n;
    row["eval/length_mean"] = length / n;
    row["eval/eos_rate"] = eos / n;
    row["time/eval_s"] = seconds_since(t);
  }

  void iterate() {
    const auto t0 = Clock::now();
    std::map<std::string, double> row;

    // 1. Rollout and rewards.
    Scored sampled = sample_batch(row);
    const Rollout& seqs = sampled.rollout;
    const torch::Tensor mask = seqs.response_mask;
    const torch::Tensor eos = seqs.eos;
    const int64_t B = seqs.size();

    // 2. Rewards (unless dynamic sampling needed them already), reference, values and the policy's own log-probs,
    // concurrently.
    auto t = Clock::now();
    const uint64_t id_ref = send(RoleKind::kReference, LogprobsRequest{seqs});
    const uint64_t id_old = send(RoleKind::kActor, LogprobsRequest{seqs});
    const uint64_t id_val = critic_ ? send(RoleKind::kCritic, ValuesRequest{seqs}) : 0;
    const Message ref = wait(RoleKind::kReference, id_ref), old = wait(RoleKind::kActor, id_old);
    torch::Tensor values;
    if (critic_) {
      const Message val = wait(RoleKind::kCritic, id_val);
      row["time/critic_values_s"] = reply_seconds(val);
      values = from_message<ValuesReply>(val).values;
    }
    if (sampled.pending_score) std::tie(sampled.scores, sampled.raw) = finish_score(*sampled.pending_score, seqs, row);
    const torch::Tensor& scores = sampled.scores;
    const torch::Tensor& raw = sampled.raw;
    torch::Tensor baseline;
    if (c_.ppo.advantage_estimator == AdvantageEstimator::kRemax) baseline = greedy_baseline(seqs, row);
    row["time/score_phase_s"] = seconds_since(t);
    row["time/reference_s"] = reply_seconds(ref);
    row["time/actor_logprobs_s"] = reply_seconds(old);

    // 3. KL and advantages.
    const torch::Tensor old_logp = from_message<LogprobsReply>(old).logprobs;
    const torch::Tensor ref_logp = from_message<LogprobsReply>(ref).logprobs;
    const torch::Tensor kl_tok = (old_logp - ref_logp) * mask;  // k1 per token
    const double kl_coef = kl_.value();
    AdvantageInputs in;
    in.scores = scores;
    in.kl = kl_tok;
    in.mask = mask;
    in.values = values;
    in.baseline = baseline;
    in.kl_coef = c_.ppo.kl_mode == KlMode::kReward ? kl_coef : 0.0;
    in.gamma = c_.ppo.gamma;
    in.lambda = c_.ppo.lambda;
    in.group_size = c_.ppo.group_size;
    in.whiten_gae = c_.ppo.whiten_advantages;
    const AdvantageOutputs adv = compute_advantages(c_.ppo.advantage_estimator, in);
    const double seq_kl = kl_tok.sum(1).mean().item<double>();

    // 4. Update the actor (and the critic) concurrently.
    t = Clock::now();
    TrainPolicyRequest train_policy{seqs, old_logp, ref_logp, adv.advantages, kl_coef, iteration_, version_, {}};
    if (c_.ppo.async_rollouts.enabled) {
      // Truncated importance sampling from the sampler's (behaviour) log-probs to the current policy's.
      train_policy.behaviour_logprobs = seqs.sample_logprobs.to(old_logp.device());
      train_policy.is_cap = c_.ppo.async_rollouts.is_cap;
      const torch::Tensor w = torch::exp(old_logp - train_policy.behaviour_logprobs).masked_select(mask > 0);
      row["async/is_weight_mean"] = w.mean().item<double>();
      row["async/is_weight_max"] = w.max().item<double>();
      row["async/is_clipped_fraction"] = (w > c_.ppo.async_rollouts.is_cap).to(torch::kFloat64).mean().item<double>();
    }
    const uint64_t id_pol = send(RoleKind::kActor, train_policy);
    const uint64_t id_vf =
        critic_ ? send(RoleKind::kCritic, TrainValueRequest{seqs, values, adv.returns, iteration_}) : 0;
    const Message pol_message = wait(RoleKind::kActor, id_pol);
    const TrainReply pol = from_message<TrainReply>(pol_message);
    row["time/actor_train_s"] = reply_seconds(pol_message);
    if (critic_) {
      const Message vf_message = wait(RoleKind::kCritic, id_vf);
      row["time/critic_train_s"] = reply_seconds(vf_message);
      for (const auto& [k, v] : from_message<TrainReply>(vf_message).metrics) {
        if (k.rfind("critic/", 0) == 0) row[k] = v;
      }
      row["critic/explained_variance"] = explained_variance(values, adv.returns, mask);
      row["returns/mean"] = masked_mean(adv.returns, mask).item<double>();
    }
    row["time/train_phase_s"] = seconds_since(t);
    if (pol.weight_version != version_ + 1) {
      throw Error(fmt::format("actor reports policy version {} after an update from {}", pol.weight_version, version_));
    }
    version_ = pol.weight_version;
    for (const auto& [k, v] : pol.metrics) {
      if (k.rfind("actor/", 0) == 0) row[k] = v;
    }
    kl_.update(seq_kl, B);

    // 5. Metrics.
    const torch::Tensor lengths = mask.sum(1);
    const torch::Tensor real = mask > 0;
    row["reward/mean"] = scores.mean().item<double>();
    row["reward/std"] = scores.numel() > 1 ? scores.std().item<double>() : 0.0;
    row["reward/raw_mean"] = raw.mean().item<double>();
    row["kl/mean"] = seq_kl;
    row["kl/coef"] = kl_coef;
    row["advantages/mean_before_whitening"] = masked_mean(adv.raw, mask).item<double>();
    row["advantages/abs_mean"] = masked_mean(adv.advantages.abs(), mask).item<double>();
    row["response/length_mean"] = lengths.mean().item<double>();
    // Lengths of rewarded (raw score > 0, e.g. a correct answer) and unrewarded responses: where length drift shows.
    for (const auto& [name, rows] :
         {std::pair<const char*, torch::Tensor>{"rewarded", raw > 0}, {"unrewarded", raw <= 0}}) {
      if (rows.any().item<bool>())
        row[std::string("response/length_") + name + "_mean"] = lengths.masked_select(rows).mean().item<double>();
    }
    row["response/eos_rate"] = eos.mean().item<double>();
    // Train-inference agreement: the sampler's log-probs against the trainer's for the same tokens (meaningful at
    // temperature 1; the sampler reports log-probs of softmax(logits / temperature)).
    row["rollout/logprob_diff_max"] =
        (seqs.sample_logprobs.to(old_logp.device()) - old_logp).abs().masked_select(real).max().item<double>();
    row["policy/version"] = static_cast<double>(version_);
    ++iteration_;
    if (c_.eval.every > 0 && (iteration_ % c_.eval.every == 0 || iteration_ == c_.ppo.iterations)) evaluate(row);
    row["time/iteration_s"] = seconds_since(t0);
    session_.log().log_scalars(iteration_, row);
    if (c_.eval.log_samples > 0)
      log_samples(session_.log(), iteration_, seqs, scores, raw, sample_tok_ ? &*sample_tok_ : nullptr,
                  c_.eval.log_samples);
    last_reward_ = row["reward/mean"];
    spdlog::info(
        "iter {:>4}/{} reward {:+.4f} kl {:.4f} (coef {:.3f}) ratio [{:.3f}, {:.3f}] clip {:.3f}{} len {:.1f} | "
        "{:.2f}s",
        iteration_, c_.ppo.iterations, last_reward_, seq_kl, kl_coef, row["actor/ratio_min"], row["actor/ratio_max"],
        row["actor/clip_fraction"], critic_ ? fmt::format(" vloss {:.4f}", row["critic/value_loss"]) : "",
        row["response/length_mean"], row["time/iteration_s"]);
    if (row.count("eval/reward_mean") != 0) {
      spdlog::info("eval at iteration {}: reward {:.4f} on {} prompts, length {:.2f}", iteration_,
                   row["eval/reward_mean"], eval_prompts_.size(), row["eval/length_mean"]);
    }
  }

  // Gathers the actor's and critic's state and saves one checkpoint with the controller's own state.
  void checkpoint() {
    const uint64_t ia = send(RoleKind::kActor, SaveStateRequest{});
    const uint64_t ic = critic_ ? send(RoleKind::kCritic, SaveStateRequest{}) : 0;
    const RoleState actor = from_message<RoleState>(wait(RoleKind::kActor, ia));
    core::CheckpointState s;
    s.step = iteration_;
    // The policy is group "model" (what `troupe generate`, evaluation and init_from read); the critic "critic".
    const auto add = [&s](const std::string& group, const RoleState& state) {
      models::add_gpt_state_to_checkpoint(s, group, state.model);
      s.optimizer_blobs[group] = state.optimizer;
    };
    add("model", actor);
    if (critic_) add("critic", from_message<RoleState>(wait(RoleKind::kCritic, ic)));
    if (actor.ptx) s.extra["ptx_state"] = *actor.ptx;
    s.extra["iteration"] = iteration_;
    s.extra["policy_version"] = version_;
    s.extra["kl_controller"] = kl_.state();
    // A generation in flight (only at a signal) has drawn prompts the checkpoint must not count as used.
    s.extra["prompt_state"] = (pending_ ? shuffler_before_pending_ : shuffler_.state()).to_vector();
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
      if (role == RoleKind::kCritic && !critic_) continue;
      if (s.tensor_groups.count(group) == 0)
        throw ConfigError("resume: the checkpoint has no '" + group + "' state (written by a run without a " +
                          role_name(role) + "?)");
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
      wait(role, post(role, std::move(m)));
    }
    last_checkpoint_ = iteration_;  // the rollout worker gets the checkpoint's weights before its next generation
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
    for (RoleKind role : roles_) {
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
  const std::vector<RoleKind> roles_;  // the roles this run started (no critic for critic-free estimators)
  const bool critic_;
  core::RunSession& session_;
  ControllerOptions options_;
  KlController kl_;
  std::vector<std::vector<int64_t>> prompts_;
  std::vector<std::vector<int64_t>> eval_prompts_;
  std::optional<tokenizers::BpeTokenizer> sample_tok_;  // decodes the logged samples (none: they show ids)
  data::EpochShuffler shuffler_;
  RoleMap<std::unique_ptr<distributed::Client>> clients_;
  int64_t iteration_ = 0;
  int64_t version_ = 0;
  int64_t rollout_version_ = 0;                 // the weights the rollout worker holds (async)
  bool weight_group_formed_ = false;            // weight_sync: collective, once the first push has formed it
  std::optional<uint64_t> pending_;             // the request id of the generation in flight (async)
  int64_t pending_version_ = 0;                 // the weights it was started with
  data::ShuffleState shuffler_before_pending_;  // the prompt cursor before its prompts were drawn
  int64_t last_checkpoint_ = -1;
  double last_reward_ = 0;
  std::map<std::string, std::string> endpoints_;  // role -> endpoint (new ones after a restart)
  std::map<RoleKind, std::map<uint64_t, Clock::time_point>> outstanding_;  // sent, reply not yet received
  int64_t restarts_ = 0;  // recoveries so far (fault.tolerance restart)
};

}  // namespace

int run_ppo_controller(const PpoConfig& config, core::RunSession& session, const ControllerOptions& options) {
  PpoController controller(config, session, options);
  return controller.run();
}

}  // namespace troupe::rlhf
