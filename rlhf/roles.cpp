// Implementation of rlhf/roles.h.
#include "rlhf/roles.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "core/checkpoint_state.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/progress.h"
#include "core/seeding.h"
#include "data/lm_data.h"
#include "data/text_datasets.h"
#include "distributed/communicator.h"
#include "distributed/data_parallel.h"
#include "distributed/nccl_communicator.h"
#include "distributed/thread_communicator.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "rlhf/ppo_math.h"
#include "rlhf/protocol.h"
#include "rlhf/rollout.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::rlhf {

using distributed::Message;
using distributed::MessageType;

Message Role::handle(const Message& request) {
  const auto start = std::chrono::steady_clock::now();
  Message reply = dispatch(distributed::to_device(request, device_));
  reply.type = MessageType::kReply;
  reply.step = request.step;
  set_reply_seconds(reply, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return reply;
}

const std::vector<std::string>& role_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (RoleKind k : kRoleKinds) out.emplace_back(role_name(k));
    return out;
  }();
  return names;
}

std::vector<RoleKind> active_roles(const PpoConfig& config) {
  std::vector<RoleKind> out;
  for (RoleKind k : kRoleKinds) {
    if (k == RoleKind::kCritic && !needs_critic(config.ppo.advantage_estimator)) continue;
    if (k == RoleKind::kRollout && !config.ppo.async_rollouts.enabled) continue;
    out.push_back(k);
  }
  return out;
}

std::vector<std::string> active_role_names(const PpoConfig& config) {
  std::vector<std::string> out;
  for (RoleKind k : active_roles(config)) out.emplace_back(role_name(k));
  return out;
}

namespace {

[[noreturn]] void unsupported(const std::string& role, const Message& m) {
  throw ProtocolError(role + " does not handle " + distributed::to_string(m.type) + " requests");
}

// ---- data parallelism inside a role's group ----
// Every rank of a group receives the same request (distributed/group_relay.h) and works on its own rows; results
// are reassembled by summing zero-padded row blocks, gradients by one flat all-reduce. With one rank all of this
// is the identity.

using distributed::gather_rows;
using distributed::optimizer_step;
using distributed::shard_rows;

// Every rank's value of x, in rank order.
std::vector<double> all_values(distributed::Communicator& comm, double x) {
  torch::Tensor v = torch::zeros({comm.size()}, torch::kFloat64);
  v[comm.rank()] = x;
  comm.allreduce_sum(v);
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

// Per-token [B, T] output of `f` on this rank's rows of `batch`, reassembled over the group.
template <class F>
torch::Tensor sharded_rows(distributed::Communicator& comm, const SequenceBatch& batch, F&& f) {
  const auto [begin, end] = shard_rows(batch.size(), comm);
  torch::Tensor mine;
  if (end > begin) mine = f(batch.select(torch::arange(begin, end, torch::kLong)));
  return gather_rows(comm, mine, {batch.size(), batch.response_length()});
}

distributed::Communicator& single_rank() {
  static distributed::SingleProcessCommunicator one;
  return one;
}

// The starting policy: init_from, or a random GPT seeded from (seed, "policy") — the actor and the reference
// build exactly the same weights this way, in any process.
models::Gpt starting_policy(const PpoConfig& c, models::GptHeads heads = {}) {
  core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "policy", 0));
  if (c.actor.init_from.empty()) return models::Gpt(c.actor.model, heads);
  return models::load_pretrained_gpt(c.actor.init_from, heads);
}

// The policy the actor trains (and rollout workers mirror): the starting policy, its base quantized and frozen
// and LoRA adapters added when actor.quantization / actor.lora say so (QLoRA as the actor), or fake-quantized
// (QAT). The same structure in every process, so weights and checkpoints move between them.
models::Gpt trained_policy(const PpoConfig& c) {
  models::Gpt model = starting_policy(c);
  const models::QuantSection& q = c.actor.quantization;
  if (q.enabled() && !q.qat) {
    const auto layers = models::quantize_gpt(model, models::GptQuantConfig::from_section(q));
    spdlog::info("actor: {} layers quantized to {} (frozen base)", layers.size(), core::enum_name(q.scheme));
  }
  if (c.actor.lora.rank > 0) {
    models::LoraConfig lora;
    lora.rank = c.actor.lora.rank;
    lora.alpha = c.actor.lora.alpha;
    lora.dropout = c.actor.lora.dropout;
    lora.targets = c.actor.lora.targets;
    core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "actor-lora", 0));  // same adapters everywhere
    models::apply_lora(model, lora);
  }
  if (q.enabled() && q.qat) models::enable_fake_quant(model, q.scheme, q.group, q.targets);
  return model;
}

// A frozen role's model quantized as its config section says (LoRA adapters of an RM run are merged first: a
// quantized layer cannot merge them later). Logged with the weight bytes before and after.
void quantize_frozen(models::Gpt& model, const models::QuantSection& q, const std::string& role) {
  if (!q.enabled() || (model->quant_config().enabled() && !model->quant_config().fake)) return;
  bool adapters = false;
  for (auto& [name, layer] : model->linear_layers()) adapters = adapters || (layer->has_lora() && !layer->merged());
  if (adapters) models::merge_lora(model);
  const int64_t before = models::gpt_weight_bytes(model);
  const auto layers = models::quantize_gpt(model, models::GptQuantConfig::from_section(q));
  spdlog::info("{}: {} layers quantized to {}: weights {:.2f} -> {:.2f} MB", role, layers.size(),
               core::enum_name(q.scheme), before / 1e6, models::gpt_weight_bytes(model) / 1e6);
}

models::Gpt on_device(models::Gpt model, const c10::Device& device) {
  model->to(device);
  return model;
}

// A trained role's model and optimizer state (rank 0 of a group: every rank holds the same).
RoleState role_state(models::Gpt& model, torch::optim::Optimizer& optimizer, int64_t version) {
  RoleState r;
  r.model = models::gpt_state(model);
  core::CheckpointState s;
  s.add_optimizer("o", optimizer);
  r.optimizer = s.optimizer_blobs.at("o");
  r.weight_version = version;
  return r;
}

void restore_role_state(const RoleState& r, models::Gpt& model, torch::optim::Optimizer& optimizer) {
  models::load_gpt_state(model, r.model);
  core::CheckpointState s;
  s.optimizer_blobs["o"] = r.optimizer;
  s.load_optimizer("o", optimizer);
}

// The empty reply to a kLoadState request.
Message loaded(int64_t version) {
  RoleState none;
  none.weight_version = version;
  return to_message(none, /*as_request=*/false);
}

// Rows per forward/backward pass of a minibatch shard of `rows`: ppo.micro_batch (0 = all), one row at a time in the
// deterministic (batch-invariant) mode. The actor and the critic split their shards alike.
int64_t micro_batch_rows(const PpoConfig& c, bool rowwise, int64_t rows) {
  if (rowwise) return 1;
  return c.ppo.micro_batch > 0 ? c.ppo.micro_batch : rows;
}

// The request's rows reordered by ascending sample id.
TrainPolicyRequest sorted_by_sample_id(const TrainPolicyRequest& r) {
  const torch::Tensor order = std::get<1>(r.sample_ids.sort()).to(r.batch.sequences.device());
  TrainPolicyRequest s = r;
  s.batch = r.batch.select(order);
  s.old_logprobs = r.old_logprobs.index_select(0, order);
  s.ref_logprobs = r.ref_logprobs.index_select(0, order);
  s.advantages = r.advantages.index_select(0, order);
  if (r.behaviour_logprobs.defined()) s.behaviour_logprobs = r.behaviour_logprobs.index_select(0, order);
  s.sample_ids = r.sample_ids.index_select(0, order.to(r.sample_ids.device()));
  return s;
}

// The sampling settings of the policy: generation, ending at the tokenizer's <|endoftext|> unless stop tokens are
// configured.
models::GenerationConfig sampling_config(const PpoConfig& c) {
  models::GenerationConfig g = c.generation;
  if (g.stop_tokens.empty() && !c.prompts.tokenizer.empty()) {
    const auto eos = data::eos_id_of(tokenizers::open_tokenizer(c.prompts.tokenizer, c.prompts.encoding));
    if (eos) g.stop_tokens.push_back(*eos);
  }
  return g;
}

// A rollout of `model` at `version` for request `r` (greedy when asked). With `rowwise` the sampler reports the
// log-probs of the trainer's batch-invariant path: identical bits, so the train-inference gap is exactly 0 and the
// first ratio exactly 1.
GenerateReply sample(models::Gpt& model, const models::GenerationConfig& config, bool rowwise, const GenerateRequest& r,
                     int64_t version) {
  GenerateReply out;
  out.weight_version = version;
  models::GenerationConfig g = config;
  if (r.greedy) g.do_sample = false;
  out.rollout = generate_rollout(model, r.prompt_ids, r.prompt_mask, g, r.seed);
  if (rowwise && g.temperature == 1.0) {
    torch::NoGradGuard no_grad;
    out.rollout.sample_logprobs = response_logprobs_rowwise(model, out.rollout).logprobs * out.rollout.response_mask;
  }
  return out;
}

// The weight-broadcast group named by `id` (protocol.h): a thread group for "thread:..." ids, else NCCL on this role's
// GPU.
std::unique_ptr<distributed::Communicator> join_weight_group(const JoinWeightGroupRequest& r, int64_t rank,
                                                             c10::Device device) {
  if (r.id.rfind("thread:", 0) == 0)
    return distributed::join_thread_group(r.id, static_cast<int>(rank), static_cast<int>(r.size),
                                          std::chrono::seconds(120));
  if (!device.is_cuda()) {
    throw ConfigError(
        "ppo.async.weight_sync: collective between worker processes broadcasts over NCCL, which needs "
        "the actor and the rollout worker on GPUs; this role runs on " +
        device.str());
  }
  return distributed::NcclCommunicator::create(r.id, static_cast<int>(rank), static_cast<int>(r.size), device.index());
}

// One weight push over the group: every parameter and buffer of `model` broadcast in place from group rank 0 (the
// actor), then the sender's checksum of them; a receiver whose weights then hash to anything else raises
// ProtocolError. Returns the checksum of this rank's weights.
std::string broadcast_weights(distributed::Communicator& group, models::Gpt& model, const std::string& role) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : model->parameters()) {
    if (p.numel() == 0) continue;  // the released weight of a quantized layer (the same structure on every rank)
    torch::Tensor t = p.detach();
    group.broadcast(t, 0);
  }
  for (const torch::Tensor& b : model->buffers()) {
    torch::Tensor t = b.detach();
    group.broadcast(t, 0);
  }
  const std::string mine = weights_checksum(models::gpt_state(model));
  const auto device = model->parameters().front().device();
  torch::Tensor sent = torch::zeros({static_cast<int64_t>(mine.size())}, torch::kUInt8);
  if (group.rank() == 0) std::memcpy(sent.data_ptr(), mine.data(), mine.size());
  sent = sent.to(device);
  group.broadcast(sent, 0);
  const torch::Tensor host = sent.cpu();
  const std::string theirs(static_cast<const char*>(host.data_ptr()), mine.size());
  if (theirs != mine) {
    throw ProtocolError(role + " (weight group rank " + std::to_string(group.rank()) + "): weights broadcast with " +
                        "checksum " + theirs + " arrived as " + mine + " (corrupted in transfer)");
  }
  return mine;
}

// ProtocolError unless the weights that arrived hash to the checksum they were sent with.
void verify_checksum(const RoleState& r, const std::string& role) {
  if (r.checksum.empty()) return;
  const std::string got = weights_checksum(r.model);
  if (got != r.checksum) {
    throw ProtocolError(role + ": weights of version " + std::to_string(r.weight_version) + " arrived with checksum " +
                        got + ", sent with " + r.checksum + " (corrupted in transfer)");
  }
}

class ActorRole final : public Role {
 public:
  ActorRole(const PpoConfig& c, distributed::Communicator& comm, c10::Device device)
      : Role(device),
        c_(c),
        comm_(comm),
        model_(on_device(trained_policy(c), device)),
        gen_(sampling_config(c)),
        rowwise_(c.runtime.deterministic) {
    model_->eval();  // dropout off: PPO's ratio must be exactly 1 before the first update
    optimizer_ = models::make_adamw(*model_, c.actor.optim);
    for (const auto& p : model_->parameters()) {
      if (p.requires_grad()) params_.push_back(p);  // all of them, or the adapters of a (Q)LoRA actor
    }
    if (c.ppo.ptx_coef > 0) {
      data::LmBatchOptions o;
      o.batch_size = c.ppo.ptx_batch;
      o.block_size = model_->config().block_size;
      o.seed = core::derive_seed(static_cast<uint64_t>(c.seed), "ptx", 0);
      o.model_vocab_size = model_->config().vocab_size;
      ptx_ = std::make_unique<data::LmBatchSampler>(c.ppo.ptx_data, o);
    }
  }
  std::string name() const override { return role_name(RoleKind::kActor); }

 protected:
  Message dispatch(const Message& m) override {
    switch (m.type) {
      case MessageType::kGenerate: return to_message(generate(from_message<GenerateRequest>(m)));
      case MessageType::kLogprobs: return to_message(logprobs(from_message<LogprobsRequest>(m)));
      case MessageType::kTrainPolicy: return to_message(train(from_message<TrainPolicyRequest>(m)));
      case MessageType::kSaveState:
        return to_message(save(from_message<SaveStateRequest>(m).weights_only), /*as_request=*/false);
      case MessageType::kLoadState: load(from_message<RoleState>(m)); return loaded(version_);
      // The weight-broadcast group of asynchronous rollouts: rank 0 of an actor group is its rank 0.
      case MessageType::kWeightGroupId:
        return to_message(WeightGroupId{comm_.rank() == 0 ? distributed::NcclCommunicator::new_unique_id() : ""});
      case MessageType::kJoinWeightGroup:
        if (comm_.rank() == 0) weight_group_ = join_weight_group(from_message<JoinWeightGroupRequest>(m), 0, device_);
        return loaded(version_);
      case MessageType::kBroadcastWeights: {
        if (comm_.rank() != 0) return to_message(BroadcastWeightsReply{"", version_});
        const BroadcastWeightsRequest r = from_message<BroadcastWeightsRequest>(m);
        if (!weight_group_) throw ProtocolError("actor: broadcast_weights before join_weight_group");
        if (r.version != version_)
          throw ProtocolError(
              fmt::format("actor: asked to broadcast weights of version {}, holds version {}", r.version, version_));
        return to_message(BroadcastWeightsReply{broadcast_weights(*weight_group_, model_, name()), version_});
      }
      default: unsupported(name(), m);
    }
  }

 private:
  // Rollouts are sampled by rank 0 of the group (the others have nothing to add yet: same weights, same seed).
  GenerateReply generate(const GenerateRequest& r) {
    if (comm_.rank() != 0) return GenerateReply{{}, version_};
    return sample(model_, gen_, rowwise_, r, version_);
  }

  LogprobsReply logprobs(const LogprobsRequest& r) {
    torch::NoGradGuard no_grad;
    return {sharded_rows(comm_, r.batch,
                         [&](const SequenceBatch& b) {
                           return response_logprobs(model_, b, false, rowwise_, c_.ppo.pack_sequences).logprobs;
                         }),
            version_};
  }

  TrainReply train(const TrainPolicyRequest& r);

  // The whole state for a checkpoint, or only the weights (and their checksum) for a weight push.
  RoleState save(bool weights_only) {
    if (comm_.rank() != 0) return RoleState{{}, {}, {}, version_};  // every rank holds the same state
    RoleState out;
    if (weights_only) {
      out.model = models::gpt_state(model_);
      out.weight_version = version_;
    } else {
      out = role_state(model_, *optimizer_, version_);
      if (ptx_) out.ptx = ptx_->state().to_vector();
    }
    out.checksum = weights_checksum(out.model);
    return out;
  }

  void load(const RoleState& r) {
    verify_checksum(r, name());
    restore_role_state(r, model_, *optimizer_);
    version_ = r.weight_version;
    if (ptx_) {
      if (!r.ptx) throw ProtocolError("actor: the state to load has no PPO-ptx sampler state");
      ptx_->restore(data::LmBatchState::from_vector(*r.ptx));
    }
  }

  const PpoConfig c_;
  distributed::Communicator& comm_;
  models::Gpt model_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> params_;
  models::GenerationConfig gen_;
  const bool rowwise_;  // runtime.deterministic: batch-invariant (row-by-row) log-probs everywhere
  std::unique_ptr<distributed::Communicator> weight_group_;  // asynchronous rollouts' weight broadcasts
  std::unique_ptr<data::LmBatchSampler> ptx_;
  int64_t version_ = 0;
};

// One PPO update of the policy: epochs x minibatches over the rollout in the order minibatch_order() gives
// (the critic uses the same schedule). Each minibatch's loss is aggregated (ppo.loss_aggregation) over the whole
// minibatch — the global batch of that optimizer step — whichever rank holds which rows. The first minibatch must see
// ratio 1: the log-probs it was given come from this very policy, unchanged — anything else means stale or off-policy
// data.
TrainReply ActorRole::train(const TrainPolicyRequest& r) {
  if (r.weight_version != version_) {
    throw Error("actor: rollout generated with policy version " + std::to_string(r.weight_version) +
                " but the actor is at version " + std::to_string(version_) + " (off-policy data refused)");
  }
  // Rows in sample-id order: the update cannot depend on the order in which samples arrived.
  TrainPolicyRequest sorted;
  const TrainPolicyRequest& req = r.sample_ids.defined() ? (sorted = sorted_by_sample_id(r)) : r;
  const SequenceBatch& all = req.batch;
  const int64_t iteration = r.iteration;
  // Asynchronous rollouts: truncated importance weights min(π_old / π_behaviour, cap) from the sampler's log-probs
  // scale the advantages — the same as weighting each token's clipped loss, since the weights are >= 0.
  torch::Tensor advantages = req.advantages;
  if (req.behaviour_logprobs.defined()) {
    advantages =
        advantages * torch::exp(req.old_logprobs - req.behaviour_logprobs).clamp_max(r.is_cap) * all.response_mask;
  }
  ActorLossOptions loss_options;
  loss_options.clip_eps = c_.ppo.clip_eps;
  loss_options.clip_eps_high = c_.ppo.clip_eps_high;
  loss_options.dual_clip = c_.ppo.dual_clip;
  loss_options.ratio = c_.ppo.policy_loss;
  loss_options.aggregation = c_.ppo.loss_aggregation;
  loss_options.entropy_coef = c_.ppo.entropy_coef;
  loss_options.kl_loss = c_.ppo.kl_mode == KlMode::kLoss;
  loss_options.kl_coef = r.kl_coef;
  loss_options.kl = c_.ppo.kl_estimator;
  models::set_lr(*optimizer_, models::lr_at(c_.actor.optim, iteration, c_.ppo.iterations));
  const double clip = c_.actor.optim.grad_clip > 0 ? c_.actor.optim.grad_clip : std::numeric_limits<double>::infinity();

  // Per optimizer step: the aggregated policy, entropy and KL terms, {clipped tokens, approx-KL, ratio} summed over
  // tokens, the ptx loss and the gradient norm.
  enum { kPolicy, kClipped, kApproxKl, kEntropy, kRatio, kKl, kPtx, kGradNorm, kStats };
  std::vector<double> totals(kStats, 0.0);
  double ratio_min = std::numeric_limits<double>::infinity(), ratio_max = -std::numeric_limits<double>::infinity();
  int64_t steps = 0;
  for (int64_t epoch = 0; epoch < c_.ppo.epochs; ++epoch) {
    const auto batches =
        minibatch_order(all.size(), c_.ppo.minibatch, static_cast<uint64_t>(c_.seed), iteration, epoch);
    for (const torch::Tensor& order : batches) {
      const torch::Tensor idx = order.to(device_);
      const double tokens = all.response_mask.index_select(0, idx).sum().item<double>();
      const LossNormalizer norm{tokens, static_cast<double>(idx.numel()),
                                static_cast<double>(c_.generation.max_new_tokens)};
      const auto [begin, end] = shard_rows(idx.numel(), comm_);
      std::vector<double> local(kStats, 0.0);
      optimizer_->zero_grad();
      // This rank's rows in micro-batches (gradients accumulate); in deterministic mode every row is its own forward
      // and backward pass, in order, so neither the micro-batch size nor the other rows can change a bit.
      const int64_t micro = micro_batch_rows(c_, rowwise_, end - begin);
      for (int64_t at = begin; at < end; at += micro) {
        const torch::Tensor mine = idx.slice(0, at, std::min(end, at + micro));
        const SequenceBatch mb = all.select(mine);
        const torch::Tensor mask = mb.response_mask;
        const double my_tokens = mask.sum().item<double>();
        const ResponseForward f = response_logprobs(model_, mb, /*entropy=*/true, rowwise_, c_.ppo.pack_sequences);
        const ActorLossOut a = actor_loss(f.logprobs, f.entropy, req.old_logprobs.index_select(0, mine),
                                          req.ref_logprobs.index_select(0, mine), advantages.index_select(0, mine),
                                          mask, norm, loss_options);
        const PolicyLossOut& p = a.policy;
        const torch::Tensor ratios = p.ratio.masked_select(mask > 0);
        if (epoch == 0 && steps == 0 && c_.ppo.assert_first_ratio) {
          // Batch-invariant log-probs make it exactly 1; otherwise kernels may differ in the last bits.
          const double worst = (ratios - 1).abs().max().item<double>();
          if (worst > (rowwise_ ? 0.0 : 1e-4)) {
            throw Error("actor: PPO ratio on the first minibatch is not 1 (max |ratio - 1| = " + std::to_string(worst) +
                        "): the rollout log-probs do not come from the current policy");
          }
        }
        a.loss.backward();
        core::progress_tick();
        local[kPolicy] += a.policy_term;
        local[kKl] += a.kl_term;
        local[kClipped] += p.clip_fraction * my_tokens;
        local[kApproxKl] += p.approx_kl * my_tokens;
        local[kEntropy] += a.entropy_term;
        local[kRatio] += ratios.sum().item<double>();
        ratio_min = std::min(ratio_min, ratios.min().item<double>());
        ratio_max = std::max(ratio_max, ratios.max().item<double>());
      }
      if (ptx_) {
        // PPO-ptx (InstructGPT): every rank draws the same pretraining batch and takes its rows of it.
        const data::LmBatch b = ptx_->next_random();
        const auto [pb, pe] = shard_rows(b.input_ids.size(0), comm_);
        if (pe > pb) {
          models::GptInput in;
          in.ids = b.input_ids.slice(0, pb, pe);
          const torch::Tensor lm = model_->lm_loss_sum(model_->hidden(in), b.targets.slice(0, pb, pe), -100) /
                                   static_cast<double>(b.targets.numel());
          (c_.ppo.ptx_coef * lm).backward();
          local[kPtx] = lm.item<double>();
        }
      }
      local[kGradNorm] = optimizer_step(comm_, params_, *optimizer_, clip) / comm_.size();  // same on every rank
      torch::Tensor stats = torch::tensor(local, torch::kFloat64);
      comm_.allreduce_sum(stats);
      for (int k = 0; k < kStats; ++k) {
        const double v = stats[k].item<double>();
        const bool per_token_sum = k == kClipped || k == kApproxKl || k == kRatio;
        totals[static_cast<size_t>(k)] += per_token_sum ? v / tokens : v;
      }
      ++steps;
    }
  }
  const auto mins = all_values(comm_, ratio_min), maxs = all_values(comm_, ratio_max);
  ratio_min = *std::min_element(mins.begin(), mins.end());
  ratio_max = *std::max_element(maxs.begin(), maxs.end());
  const char* names[kStats] = {"policy_loss", "clip_fraction", "approx_kl", "entropy",
                               "ratio_mean",  "kl_loss",       "ptx_loss",  "grad_norm"};
  std::map<std::string, double> sums;
  for (int k = 0; k < kStats; ++k) sums[names[k]] = totals[static_cast<size_t>(k)];
  ++version_;
  TrainReply out;
  out.weight_version = version_;
  for (const auto& [k, v] : sums) out.metrics["actor/" + k] = v / static_cast<double>(steps);
  out.metrics["actor/ratio_min"] = ratio_min;
  out.metrics["actor/ratio_max"] = ratio_max;
  out.metrics["actor/lr"] = models::lr_at(c_.actor.optim, iteration, c_.ppo.iterations);
  return out;
}

class CriticRole final : public Role {
 public:
  CriticRole(const PpoConfig& c, distributed::Communicator& comm, c10::Device device)
      : Role(device), c_(c), comm_(comm), rowwise_(c.runtime.deterministic) {
    models::GptHeads heads;
    heads.value = true;
    if (c.critic.init_from.empty()) {
      model_ = starting_policy(c, heads);
      core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "critic", 0));
      reset_value_head();
    } else {
      core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "critic", 0));
      model_ = models::load_pretrained_gpt(c.critic.init_from, heads);
    }
    model_->to(device_);  // drawn on the CPU: the same weights on every device
    model_->eval();
    optimizer_ = models::make_adamw(*model_, c.critic.optim);
    for (const auto& p : model_->parameters()) params_.push_back(p);
  }
  std::string name() const override { return role_name(RoleKind::kCritic); }

 protected:
  Message dispatch(const Message& m) override {
    switch (m.type) {
      case MessageType::kValues: return to_message(values(from_message<ValuesRequest>(m)));
      case MessageType::kTrainValue: return to_message(train(from_message<TrainValueRequest>(m)));
      case MessageType::kSaveState:
        return to_message(comm_.rank() == 0 ? role_state(model_, *optimizer_, 0) : RoleState{}, /*as_request=*/false);
      case MessageType::kLoadState:
        restore_role_state(from_message<RoleState>(m), model_, *optimizer_);
        return loaded(0);
      default: unsupported(name(), m);
    }
  }

 private:
  // The value head drawn from the critic's own seed, so the trunk equals the policy's start exactly.
  void reset_value_head() {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->named_parameters()) {
      if (p.key().rfind("value_head", 0) != 0) continue;
      if (p.key().find("weight") != std::string::npos) {
        p.value().normal_(0.0, 1.0 / std::sqrt(static_cast<double>(model_->config().n_embd + 1)));
      } else {
        p.value().zero_();
      }
    }
  }

  ValuesReply values(const ValuesRequest& r) {
    torch::NoGradGuard no_grad;
    return {sharded_rows(comm_, r.batch, [&](const SequenceBatch& b) { return response_values(model_, b, rowwise_); })};
  }

  TrainReply train(const TrainValueRequest& r) {
    const SequenceBatch& all = r.batch;
    const torch::Tensor& old_values = r.old_values;
    const torch::Tensor& returns = r.returns;
    const int64_t iteration = r.iteration;
    models::set_lr(*optimizer_, models::lr_at(c_.critic.optim, iteration, c_.ppo.iterations));
    const double clip =
        c_.critic.optim.grad_clip > 0 ? c_.critic.optim.grad_clip : std::numeric_limits<double>::infinity();
    double loss_sum = 0, clip_sum = 0, grad_sum = 0;
    int64_t steps = 0;
    for (int64_t epoch = 0; epoch < c_.ppo.epochs; ++epoch) {
      const auto batches =
          minibatch_order(all.size(), c_.ppo.minibatch, static_cast<uint64_t>(c_.seed), iteration, epoch);
      for (const torch::Tensor& order : batches) {
        const torch::Tensor idx = order.to(device_);
        // The same schedule as the actor; each rank takes its rows, the loss is a mean over all tokens.
        const double tokens = all.response_mask.index_select(0, idx).sum().item<double>();
        const auto [begin, end] = shard_rows(idx.numel(), comm_);
        torch::Tensor local = torch::zeros({2}, torch::kFloat64);
        optimizer_->zero_grad();
        // Micro-batches as the actor's: one row at a time in deterministic mode.
        const int64_t micro = micro_batch_rows(c_, rowwise_, end - begin);
        for (int64_t at = begin; at < end; at += micro) {
          const torch::Tensor mine = idx.slice(0, at, std::min(end, at + micro));
          const SequenceBatch mb = all.select(mine);
          const torch::Tensor values = response_values(model_, mb, rowwise_);
          const ValueLossOut v = value_loss(values, old_values.index_select(0, mine), returns.index_select(0, mine),
                                            mb.response_mask, c_.ppo.value_clip);
          const torch::Tensor loss = c_.ppo.value_coef * v.per_token.sum() / tokens;
          loss.backward();
          core::progress_tick();
          local[0] += loss.item<double>();
          local[1] += v.clip_fraction * mb.response_mask.sum().item<double>() / tokens;
        }
        grad_sum += optimizer_step(comm_, params_, *optimizer_, clip);
        comm_.allreduce_sum(local);
        loss_sum += local[0].item<double>();
        clip_sum += local[1].item<double>();
        ++steps;
      }
    }
    TrainReply out;
    out.metrics["critic/value_loss"] = loss_sum / static_cast<double>(steps);
    out.metrics["critic/clip_fraction"] = clip_sum / static_cast<double>(steps);
    out.metrics["critic/grad_norm"] = grad_sum / static_cast<double>(steps);
    return out;
  }

  const PpoConfig c_;
  distributed::Communicator& comm_;
  const bool rowwise_;  // runtime.deterministic: batch-invariant values and updates
  models::Gpt model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> params_;
};

// The sampler of asynchronous rollouts: a copy of the policy that generates while the actor trains, and takes the
// actor's weights when the controller pushes them (kLoadState: weights only, versioned, checksummed).
class RolloutRole final : public Role {
 public:
  RolloutRole(const PpoConfig& c, distributed::Communicator& comm, c10::Device device)
      : Role(device),
        comm_(comm),
        model_(on_device(trained_policy(c), device)),
        gen_(sampling_config(c)),
        rowwise_(c.runtime.deterministic) {
    model_->eval();
    for (const auto& p : model_->parameters()) p.set_requires_grad(false);
  }
  std::string name() const override { return role_name(RoleKind::kRollout); }

 protected:
  Message dispatch(const Message& m) override {
    switch (m.type) {
      case MessageType::kGenerate: return to_message(generate(from_message<GenerateRequest>(m)));
      case MessageType::kLoadState: {  // every rank of a group takes the weights
        const RoleState r = from_message<RoleState>(m);
        verify_checksum(r, name());
        models::load_gpt_state(model_, r.model);
        version_ = r.weight_version;
        return loaded(version_);
      }
      case MessageType::kJoinWeightGroup: {  // every rank of a group joins, rank r as first_rank + r
        const JoinWeightGroupRequest r = from_message<JoinWeightGroupRequest>(m);
        weight_group_ = join_weight_group(r, r.first_rank + comm_.rank(), device_);
        return loaded(version_);
      }
      case MessageType::kBroadcastWeights: {  // every rank receives
        if (!weight_group_) throw ProtocolError("rollout: broadcast_weights before join_weight_group");
        const std::string checksum = broadcast_weights(*weight_group_, model_, name());
        version_ = from_message<BroadcastWeightsRequest>(m).version;
        return to_message(BroadcastWeightsReply{checksum, version_});
      }
      default: unsupported(name(), m);
    }
  }

 private:
  // One rank samples the whole batch. A group of W ranks (placement.rollout_ranks) samples a share of the rows
  // each (shard_rows), rank r with the request's seed for r = 0 and a seed derived from it and r otherwise, and
  // rank 0 assembles the rows in order: a W-rank batch is a different draw than the 1-rank batch, from the same
  // policy version.
  GenerateReply generate(GenerateRequest r) {
    if (comm_.size() == 1) return sample(model_, gen_, rowwise_, r, version_);
    const int64_t B = r.prompt_ids.size(0), N = gen_.max_new_tokens;
    const auto [begin, end] = shard_rows(B, comm_);
    if (comm_.rank() != 0) r.seed = core::derive_seed(r.seed, "rollout_rank", comm_.rank()) >> 11;
    // [rows, 3N + 1]: response ids, mask, sampler log-probs (each padded to N), EOS, as float32 for gather_rows (ids
    // are exact below 2^24, far above any vocabulary here).
    torch::Tensor mine;
    if (end > begin) {
      GenerateRequest part = r;
      part.prompt_ids = r.prompt_ids.slice(0, begin, end);
      part.prompt_mask = r.prompt_mask.slice(0, begin, end);
      const Rollout g = sample(model_, gen_, rowwise_, part, version_).rollout;
      const int64_t T = g.response_length();
      const auto padded = [&](const torch::Tensor& t, double value) {
        return torch::constant_pad_nd(t.to(torch::kFloat32).cpu(), {0, N - T}, value);
      };
      mine = torch::cat(
          {padded(g.sequences.slice(1, g.prompt_length), static_cast<double>(gen_.pad_id)), padded(g.response_mask, 0),
           padded(g.sample_logprobs, 0), g.eos.to(torch::kFloat32).cpu().unsqueeze(1)},
          1);
    }
    const torch::Tensor all = gather_rows(comm_, mine, {B, 3 * N + 1});
    // Every rank must have sampled with the same weights (each took every push).
    const int W = comm_.size();
    const torch::Tensor versions =
        gather_rows(comm_, torch::full({1, 1}, static_cast<float>(version_), torch::kFloat32), {W, 1});
    if (comm_.rank() != 0) return GenerateReply{{}, version_};
    for (int k = 1; k < W; ++k) {
      const auto v = static_cast<int64_t>(versions[k][0].item<float>());
      if (v != version_)
        throw ProtocolError(
            fmt::format("rollout group: rank {} sampled with policy version {}, rank 0 with {}", k, v, version_));
    }
    const torch::Tensor mask = all.slice(1, N, 2 * N);
    const int64_t T = std::max<int64_t>(1, mask.sum(1).max().item<int64_t>());
    Rollout out;
    const torch::Tensor response = all.slice(1, 0, T).to(torch::kLong);
    out.sequences = torch::cat({r.prompt_ids.cpu(), response}, 1);
    out.response_mask = mask.slice(1, 0, T).contiguous();
    out.attention_mask = torch::cat({r.prompt_mask.cpu().to(torch::kLong), out.response_mask.to(torch::kLong)}, 1);
    out.sample_logprobs = all.slice(1, 2 * N, 2 * N + T).contiguous();
    out.eos = all.select(1, 3 * N).contiguous();
    out.prompt_length = r.prompt_ids.size(1);
    return GenerateReply{out, version_};
  }

  distributed::Communicator& comm_;
  models::Gpt model_;
  models::GenerationConfig gen_;
  const bool rowwise_;
  std::unique_ptr<distributed::Communicator> weight_group_;  // the actor's weight broadcasts (weight_sync: collective)
  int64_t version_ = 0;
};

class ReferenceRole final : public Role {
 public:
  ReferenceRole(const PpoConfig& c, distributed::Communicator& comm, c10::Device device)
      : Role(device),
        comm_(comm),
        model_(on_device(starting_policy(c), device)),
        rowwise_(c.runtime.deterministic),
        packed_(c.ppo.pack_sequences) {
    model_->eval();
    for (const auto& p : model_->parameters()) p.set_requires_grad(false);
    quantize_frozen(model_, c.reference.quantization, "reference");
  }
  std::string name() const override { return role_name(RoleKind::kReference); }

 protected:
  Message dispatch(const Message& m) override {
    if (m.type != MessageType::kLogprobs) unsupported(name(), m);
    torch::NoGradGuard no_grad;
    const LogprobsRequest r = from_message<LogprobsRequest>(m);
    return to_message(LogprobsReply{
        sharded_rows(
            comm_, r.batch,
            [&](const SequenceBatch& b) { return response_logprobs(model_, b, false, rowwise_, packed_).logprobs; }),
        0});
  }

 private:
  distributed::Communicator& comm_;
  models::Gpt model_;
  const bool rowwise_;
  const bool packed_;
};

class RewardRole final : public Role {
 public:
  RewardRole(const PpoConfig& c, c10::Device device) : Role(c.reward.model.empty() ? c10::kCPU : device), c_(c) {
    if (!c.prompts.tokenizer.empty())
      tokenizer_.emplace(tokenizers::open_tokenizer(c.prompts.tokenizer, c.prompts.encoding));
    if (c.reward.model.empty()) {
      const RewardContext context{{c.prompts.file, c.eval.file}, c.prompts.field, c.prompts.chat_template};
      function_ = c.reward.functions.empty() ? make_reward_function(c.reward.function, context)
                                             : make_reward_function(c.reward.functions, context);
      return;
    }
    const core::CheckpointState state = models::load_checkpoint_at(c.reward.model);
    model_ = on_device(models::gpt_from_checkpoint(state, "model"), device_);
    if (!model_->heads().reward)
      throw ConfigError("reward.model '" + c.reward.model + "' has no reward head (train it with troupe train rm)");
    model_->eval();
    quantize_frozen(model_, c.reward.quantization, "reward");
    mean_ = state.get_or<double>("reward.mean", 0.0);
    std_ = state.get_or<double>("reward.std", 1.0);
    if (c.reward.normalize && state.extra.count("reward.std") == 0) {
      throw ConfigError("reward.normalize: '" + c.reward.model + "' stores no reward statistics (reward.mean/std)");
    }
  }
  std::string name() const override { return role_name(RoleKind::kReward); }

 protected:
  Message dispatch(const Message& m) override {
    if (m.type != MessageType::kScore) unsupported(name(), m);
    const ScoreRequest r = from_message<ScoreRequest>(m);
    return to_message(ScoreReply{model_ ? model_scores(r.batch) : function_scores(r.batch, r.eos)});
  }

 private:
  torch::Tensor model_scores(const SequenceBatch& s) {
    torch::NoGradGuard no_grad;
    models::GptInput in;
    in.ids = s.sequences;
    in.attention_mask = s.attention_mask;
    in.positions = positions_of(s.attention_mask);
    torch::Tensor r = model_->reward(model_->hidden(in), s.attention_mask).to(torch::kFloat32);
    if (c_.reward.normalize) r = (r - mean_) / std::max(std_, 1e-8);
    return r;
  }

  torch::Tensor function_scores(const SequenceBatch& s, const torch::Tensor& eos) {
    std::vector<RewardSample> samples;
    const torch::Tensor seq = s.sequences.contiguous().cpu();
    const int64_t B = seq.size(0), L = seq.size(1), P = s.prompt_length;
    for (int64_t b = 0; b < B; ++b) {
      RewardSample r;
      const int64_t* row = seq.data_ptr<int64_t>() + b * L;
      const torch::Tensor pm = s.attention_mask[b].contiguous().cpu();
      for (int64_t t = 0; t < P; ++t) {
        if (pm[t].item<int64_t>() != 0) r.prompt.push_back(row[t]);
      }
      const int64_t n = static_cast<int64_t>(s.response_mask[b].sum().item<double>());
      r.ended_with_eos = eos[b].item<float>() > 0.5f;
      for (int64_t t = 0; t < n - (r.ended_with_eos ? 1 : 0); ++t) r.response.push_back(row[P + t]);
      if (tokenizer_) {
        r.response_text = tokenizer_->decode_lossy_utf8(std::vector<int>(r.response.begin(), r.response.end()));
        r.prompt_text = tokenizer_->decode_lossy_utf8(std::vector<int>(r.prompt.begin(), r.prompt.end()));
      }
      samples.push_back(std::move(r));
    }
    const std::vector<double> scores = function_->score_batch(samples);
    return torch::tensor(scores, torch::kFloat64).to(torch::kFloat32);
  }

  const PpoConfig c_;
  std::optional<tokenizers::BpeTokenizer> tokenizer_;
  std::unique_ptr<RewardFunction> function_;
  models::Gpt model_{nullptr};
  double mean_ = 0, std_ = 1;
};

}  // namespace

std::unique_ptr<Role> make_role(RoleKind kind, const PpoConfig& config, distributed::Communicator* group) {
  distributed::Communicator& comm = group != nullptr ? *group : single_rank();
  const c10::Device device = core::resolve_device(config.runtime.device, core::local_rank());
  if (config.runtime.deterministic) core::set_deterministic(true);  // worker processes have no RunSession
  switch (kind) {
    case RoleKind::kActor: return std::make_unique<ActorRole>(config, comm, device);
    case RoleKind::kCritic: return std::make_unique<CriticRole>(config, comm, device);
    case RoleKind::kReward: return std::make_unique<RewardRole>(config, device);  // cheap: each rank scores all
    case RoleKind::kReference: return std::make_unique<ReferenceRole>(config, comm, device);
    case RoleKind::kRollout: {
      const std::string& own = config.ppo.async_rollouts.rollout_device;
      return std::make_unique<RolloutRole>(config, comm,
                                           own.empty() ? device : core::resolve_device(own, core::local_rank()));
    }
  }
  throw ConfigError("make_role: unknown role kind");
}

std::unique_ptr<Role> make_role(const std::string& name, const PpoConfig& config, distributed::Communicator* group) {
  return make_role(role_kind(name), config, group);
}

}  // namespace troupe::rlhf
