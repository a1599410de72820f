// Implementation of rlhf/roles.h.
#include "rlhf/roles.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <cmath>
#include <optional>

#include "core/checkpoint_state.h"
#include "core/errors.h"
#include "core/lm_data.h"
#include "core/seeding.h"
#include "core/text_datasets.h"
#include "core/tokenizer_file.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "rlhf/ppo_math.h"
#include "rlhf/rollout.h"

namespace troupe::rlhf {

using distributed::Message;
using distributed::MessageType;

Message Role::handle(const Message& request) {
  const auto start = std::chrono::steady_clock::now();
  Message reply = dispatch(request);
  reply.type = MessageType::kReply;
  reply.step = request.step;
  reply.scalars["time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return reply;
}

const std::vector<std::string>& role_names() {
  static const std::vector<std::string> names = {"actor", "critic", "reward", "reference"};
  return names;
}

namespace {

[[noreturn]] void unsupported(const std::string& role, const Message& m) {
  throw ProtocolError(role + " does not handle " + distributed::to_string(m.type) + " requests");
}

// The starting policy: init_from, or a random GPT seeded from (seed, "policy") — the actor and the reference
// build exactly the same weights this way, in any process.
models::Gpt starting_policy(const PpoConfig& c, models::GptHeads heads = {}) {
  core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "policy", 0));
  if (c.actor.init_from.empty()) return models::Gpt(c.actor.model, heads);
  return models::load_pretrained_gpt(c.actor.init_from, heads);
}

// Full state of a trained role as tensors: "param.<name>" per parameter, "optimizer" (serialised bytes).
void add_state(Message& m, models::Gpt& model, torch::optim::Optimizer& optimizer) {
  for (const auto& p : model->named_parameters()) m.tensors.emplace_back("param." + p.key(), p.value().detach().clone());
  core::CheckpointState s;
  s.add_optimizer("o", optimizer);
  const std::string& blob = s.optimizer_blobs.at("o");
  torch::Tensor bytes = torch::empty({static_cast<int64_t>(blob.size())}, torch::kUInt8);
  std::memcpy(bytes.data_ptr(), blob.data(), blob.size());
  m.tensors.emplace_back("optimizer", bytes);
}

void load_state(const Message& m, models::Gpt& model, torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const torch::Tensor& t = m.tensor("param." + p.key());
    if (!t.sizes().equals(p.value().sizes())) {
      throw DataError("state for " + p.key() + " has the wrong shape");
    }
    p.value().copy_(t);
  }
  const torch::Tensor& bytes = m.tensor("optimizer");
  core::CheckpointState s;
  s.optimizer_blobs["o"] = std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()));
  s.load_optimizer("o", optimizer);
}

class ActorRole final : public Role {
 public:
  explicit ActorRole(const PpoConfig& c) : c_(c), model_(starting_policy(c)), gen_(c.generation) {
    model_->eval();
    // Responses end at the tokenizer's <|endoftext|> unless stop tokens are configured.
    if (gen_.stop_tokens.empty() && !c.prompts.tokenizer.empty()) {
      const auto eos = core::eos_id_of(core::open_tokenizer(c.prompts.tokenizer, c.prompts.encoding));
      if (eos) gen_.stop_tokens.push_back(*eos);
    }  // dropout off: PPO's ratio must be exactly 1 before the first update
    optimizer_ = models::make_adamw(*model_, c.actor.optim);
    for (const auto& p : model_->parameters()) params_.push_back(p);
    if (c.ppo.ptx_coef > 0) {
      core::LmBatchOptions o;
      o.batch_size = c.ppo.ptx_batch;
      o.block_size = model_->config().block_size;
      o.seed = core::derive_seed(static_cast<uint64_t>(c.seed), "ptx", 0);
      o.model_vocab_size = model_->config().vocab_size;
      ptx_ = std::make_unique<core::LmBatchSampler>(c.ppo.ptx_data, o);
    }
  }
  std::string name() const override { return "actor"; }

 protected:
  Message dispatch(const Message& m) override {
    switch (m.type) {
      case MessageType::kGenerate: return generate(m);
      case MessageType::kLogprobs: return logprobs(m);
      case MessageType::kTrainPolicy: return train(m);
      case MessageType::kSaveState: return save();
      case MessageType::kLoadState: return load(m);
      default: unsupported(name(), m);
    }
  }

 private:
  Message generate(const Message& m) {
    const Rollout r = generate_rollout(model_, m.tensor("prompt_ids"), m.tensor("prompt_mask"), gen_,
                                       static_cast<uint64_t>(m.scalar("seed")));
    Message out;
    out.weight_version = version_;
    r.add_to(out);
    out.tensors.emplace_back("eos", r.eos);
    out.tensors.emplace_back("sample_logprobs", r.sample_logprobs);
    return out;
  }

  Message logprobs(const Message& m) {
    torch::NoGradGuard no_grad;
    const SequenceBatch s = SequenceBatch::from(m);
    Message out;
    out.weight_version = version_;
    out.tensors = {{"logprobs", response_logprobs(model_, s).logprobs}};
    return out;
  }

  Message train(const Message& m);

  Message save() {
    Message out;
    out.weight_version = version_;
    add_state(out, model_, *optimizer_);
    out.strings["model_config"] = models::gpt_config_json(model_->config());
    if (ptx_) out.tensors.emplace_back("ptx_state", torch::tensor(ptx_->state().to_vector(), torch::kLong));
    return out;
  }

  Message load(const Message& m) {
    load_state(m, model_, *optimizer_);
    version_ = m.weight_version;
    if (ptx_) {
      const torch::Tensor s = m.tensor("ptx_state").contiguous();
      ptx_->restore(core::LmBatchState::from_vector(
          std::vector<int64_t>(s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel())));
    }
    Message out;
    out.weight_version = version_;
    return out;
  }

  const PpoConfig& c_;
  models::Gpt model_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> params_;
  models::GenerationConfig gen_;
  std::unique_ptr<core::LmBatchSampler> ptx_;
  int64_t version_ = 0;
};

// One PPO update of the policy: epochs x minibatches over the rollout in the order minibatch_order() gives
// (the critic uses the same schedule). Each minibatch's loss is its token mean (the minibatch is the global
// batch of that optimizer step). The first minibatch must see ratio 1: the log-probs it was given come from
// this very policy, unchanged — anything else means stale or off-policy data.
Message ActorRole::train(const Message& m) {
  if (m.weight_version != version_) {
    throw Error("actor: rollout generated with policy version " + std::to_string(m.weight_version) +
                " but the actor is at version " + std::to_string(version_) + " (off-policy data refused)");
  }
  const SequenceBatch all = SequenceBatch::from(m);
  const torch::Tensor old_logp = m.tensor("old_logprobs");
  const torch::Tensor ref_logp = m.tensor("ref_logprobs");
  const torch::Tensor advantages = m.tensor("advantages");
  const double kl_coef = m.scalar("kl_coef");
  const bool kl_loss = c_.ppo.kl_mode == "loss";
  const KlEstimator estimator = parse_kl_estimator(c_.ppo.kl_estimator);
  const int64_t iteration = m.step;
  models::set_lr(*optimizer_, models::lr_at(c_.actor.optim, iteration, c_.ppo.iterations));
  const double clip = c_.actor.optim.grad_clip > 0 ? c_.actor.optim.grad_clip : std::numeric_limits<double>::infinity();

  std::map<std::string, double> sums;
  double ratio_min = std::numeric_limits<double>::infinity(), ratio_max = 0;
  int64_t steps = 0;
  for (int64_t epoch = 0; epoch < c_.ppo.epochs; ++epoch) {
    const auto batches = minibatch_order(all.size(), c_.ppo.minibatch, static_cast<uint64_t>(c_.seed), iteration, epoch);
    for (const torch::Tensor& idx : batches) {
      const SequenceBatch mb = all.select(idx);
      const torch::Tensor mask = mb.response_mask;
      const ResponseForward f = response_logprobs(model_, mb, /*entropy=*/true);
      const PolicyLossOut p =
          policy_loss(f.logprobs, old_logp.index_select(0, idx), advantages.index_select(0, idx), mask,
                      c_.ppo.clip_eps, c_.ppo.dual_clip);
      const double tokens = mask.sum().item<double>();
      const torch::Tensor real = mask > 0;
      const torch::Tensor ratios = p.ratio.masked_select(real);
      if (epoch == 0 && steps == 0 && c_.ppo.assert_first_ratio) {
        const double worst = (ratios - 1).abs().max().item<double>();
        if (worst > 1e-4) {
          throw Error("actor: PPO ratio on the first minibatch is not 1 (max |ratio - 1| = " + std::to_string(worst) +
                      "): the rollout log-probs do not come from the current policy");
        }
      }
      torch::Tensor loss = p.per_token.sum() / tokens;
      const torch::Tensor entropy = masked_mean(f.entropy, mask);
      if (c_.ppo.entropy_coef > 0) loss = loss - c_.ppo.entropy_coef * entropy;
      double kl_term = 0;
      if (kl_loss) {
        const torch::Tensor kl = masked_sum(kl_estimate(f.logprobs, ref_logp.index_select(0, idx), estimator), mask) / tokens;
        loss = loss + kl_coef * kl;
        kl_term = kl.item<double>();
      }
      double ptx_loss = 0;
      if (ptx_) {
        const core::LmBatch b = ptx_->next_random();
        const torch::Tensor logits = model_->forward(b.input_ids);
        const torch::Tensor lm = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                                      b.targets.reshape({-1}));
        loss = loss + c_.ppo.ptx_coef * lm;
        ptx_loss = lm.item<double>();
      }
      optimizer_->zero_grad();
      loss.backward();
      const double grad_norm = torch::nn::utils::clip_grad_norm_(params_, clip);
      optimizer_->step();
      ++steps;
      sums["policy_loss"] += (p.per_token.sum() / tokens).item<double>();
      sums["clip_fraction"] += p.clip_fraction;
      sums["approx_kl"] += p.approx_kl;
      sums["entropy"] += entropy.item<double>();
      sums["ratio_mean"] += ratios.mean().item<double>();
      sums["grad_norm"] += grad_norm;
      sums["kl_loss"] += kl_term;
      sums["ptx_loss"] += ptx_loss;
      ratio_min = std::min(ratio_min, ratios.min().item<double>());
      ratio_max = std::max(ratio_max, ratios.max().item<double>());
    }
  }
  ++version_;
  Message out;
  out.weight_version = version_;
  for (const auto& [k, v] : sums) out.scalars["actor/" + k] = v / static_cast<double>(steps);
  out.scalars["actor/ratio_min"] = ratio_min;
  out.scalars["actor/ratio_max"] = ratio_max;
  out.scalars["actor/lr"] = models::lr_at(c_.actor.optim, iteration, c_.ppo.iterations);
  return out;
}

class CriticRole final : public Role {
 public:
  explicit CriticRole(const PpoConfig& c) : c_(c) {
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
    model_->eval();
    optimizer_ = models::make_adamw(*model_, c.critic.optim);
    for (const auto& p : model_->parameters()) params_.push_back(p);
  }
  std::string name() const override { return "critic"; }

 protected:
  Message dispatch(const Message& m) override {
    switch (m.type) {
      case MessageType::kValues: {
        torch::NoGradGuard no_grad;
        Message out;
        out.tensors = {{"values", response_values(model_, SequenceBatch::from(m))}};
        return out;
      }
      case MessageType::kTrainValue: return train(m);
      case MessageType::kSaveState: {
        Message out;
        add_state(out, model_, *optimizer_);
        return out;
      }
      case MessageType::kLoadState:
        load_state(m, model_, *optimizer_);
        return Message();
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

  Message train(const Message& m) {
    const SequenceBatch all = SequenceBatch::from(m);
    const torch::Tensor old_values = m.tensor("old_values");
    const torch::Tensor returns = m.tensor("returns");
    const int64_t iteration = m.step;
    models::set_lr(*optimizer_, models::lr_at(c_.critic.optim, iteration, c_.ppo.iterations));
    const double clip = c_.critic.optim.grad_clip > 0 ? c_.critic.optim.grad_clip : std::numeric_limits<double>::infinity();
    double loss_sum = 0, clip_sum = 0, grad_sum = 0;
    int64_t steps = 0;
    for (int64_t epoch = 0; epoch < c_.ppo.epochs; ++epoch) {
      const auto batches = minibatch_order(all.size(), c_.ppo.minibatch, static_cast<uint64_t>(c_.seed), iteration, epoch);
      for (const torch::Tensor& idx : batches) {
        const SequenceBatch mb = all.select(idx);
        const torch::Tensor values = response_values(model_, mb);
        const ValueLossOut v = value_loss(values, old_values.index_select(0, idx), returns.index_select(0, idx),
                                          mb.response_mask, c_.ppo.value_clip);
        const torch::Tensor loss = c_.ppo.value_coef * v.per_token.sum() / mb.response_mask.sum();
        optimizer_->zero_grad();
        loss.backward();
        grad_sum += torch::nn::utils::clip_grad_norm_(params_, clip);
        optimizer_->step();
        loss_sum += loss.item<double>();
        clip_sum += v.clip_fraction;
        ++steps;
      }
    }
    Message out;
    out.scalars["critic/value_loss"] = loss_sum / static_cast<double>(steps);
    out.scalars["critic/clip_fraction"] = clip_sum / static_cast<double>(steps);
    out.scalars["critic/grad_norm"] = grad_sum / static_cast<double>(steps);
    return out;
  }

  const PpoConfig& c_;
  models::Gpt model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> params_;
};

class ReferenceRole final : public Role {
 public:
  explicit ReferenceRole(const PpoConfig& c) : model_(starting_policy(c)) {
    model_->eval();
    for (const auto& p : model_->parameters()) p.set_requires_grad(false);
  }
  std::string name() const override { return "reference"; }

 protected:
  Message dispatch(const Message& m) override {
    if (m.type != MessageType::kLogprobs) unsupported(name(), m);
    torch::NoGradGuard no_grad;
    Message out;
    out.tensors = {{"logprobs", response_logprobs(model_, SequenceBatch::from(m)).logprobs}};
    return out;
  }

 private:
  models::Gpt model_;
};

class RewardRole final : public Role {
 public:
  explicit RewardRole(const PpoConfig& c) : c_(c) {
    if (!c.prompts.tokenizer.empty()) tokenizer_.emplace(core::open_tokenizer(c.prompts.tokenizer, c.prompts.encoding));
    if (c.reward.model.empty()) {
      function_ = make_reward_function(c.reward.function);
      return;
    }
    const core::CheckpointState state = models::load_checkpoint_at(c.reward.model);
    model_ = models::gpt_from_checkpoint(state, "model");
    if (!model_->heads().reward) throw ConfigError("reward.model '" + c.reward.model + "' has no reward head (train it with troupe train rm)");
    model_->eval();
    mean_ = state.get_or<double>("reward.mean", 0.0);
    std_ = state.get_or<double>("reward.std", 1.0);
    if (c.reward.normalize && state.extra.count("reward.std") == 0) {
      throw ConfigError("reward.normalize: '" + c.reward.model + "' stores no reward statistics (reward.mean/std)");
    }
  }
  std::string name() const override { return "reward"; }

 protected:
  Message dispatch(const Message& m) override {
    if (m.type != MessageType::kScore) unsupported(name(), m);
    const SequenceBatch s = SequenceBatch::from(m);
    Message out;
    out.tensors = {{"scores", model_ ? model_scores(s) : function_scores(s, m.tensor("eos"))}};
    return out;
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
    const torch::Tensor seq = s.sequences.contiguous();
    const int64_t B = seq.size(0), L = seq.size(1), P = s.prompt_length;
    for (int64_t b = 0; b < B; ++b) {
      RewardSample r;
      const int64_t* row = seq.data_ptr<int64_t>() + b * L;
      const auto pm = s.attention_mask[b];
      for (int64_t t = 0; t < P; ++t) {
        if (pm[t].item<int64_t>() != 0) r.prompt.push_back(row[t]);
      }
      const int64_t n = static_cast<int64_t>(s.response_mask[b].sum().item<double>());
      r.ended_with_eos = eos[b].item<float>() > 0.5f;
      for (int64_t t = 0; t < n - (r.ended_with_eos ? 1 : 0); ++t) r.response.push_back(row[P + t]);
      if (tokenizer_) {
        const std::vector<int> ids(r.response.begin(), r.response.end());
        r.response_text = tokenizer_->decode_lossy_utf8(ids);
      }
      samples.push_back(std::move(r));
    }
    const std::vector<double> scores = function_->score_batch(samples);
    return torch::tensor(scores, torch::kFloat64).to(torch::kFloat32);
  }

  const PpoConfig& c_;
  std::optional<core::BpeTokenizer> tokenizer_;
  std::unique_ptr<RewardFunction> function_;
  models::Gpt model_{nullptr};
  double mean_ = 0, std_ = 1;
};

}  // namespace

std::unique_ptr<Role> make_role(const std::string& name, const PpoConfig& config) {
  if (name == "actor") return std::make_unique<ActorRole>(config);
  if (name == "critic") return std::make_unique<CriticRole>(config);
  if (name == "reward") return std::make_unique<RewardRole>(config);
  if (name == "reference") return std::make_unique<ReferenceRole>(config);
  throw ConfigError("unknown role '" + name + "': expected actor, critic, reward or reference");
}

}  // namespace troupe::rlhf
