// Also: the rollout worker's versioned, checksummed weight push.
// The actor's update is invariant to the order of the samples it is given (ctest label `invariance`): with sample
// ids, a permuted batch (rows, log-probs, advantages and ids permuted alike) trains to bitwise-identical weights
// in the deterministic (row-by-row) mode; and in that mode the sampler's log-probs equal the
// trainer's exactly (the first ratio is exactly 1).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "distributed/message.h"
#include "models/generation.h"
#include "rlhf/protocol.h"
#include "rlhf/roles.h"

namespace troupe::rlhf {
namespace {

PpoConfig deterministic_config() {
  PpoConfig c;
  c.seed = 3;
  c.runtime.deterministic = true;
  c.actor.model.n_layer = 1;
  c.actor.model.n_head = 2;
  c.actor.model.n_embd = 32;
  c.actor.model.block_size = 16;
  c.actor.model.vocab_size = 8;
  c.actor.model.dropout = 0.0;
  c.actor.optim.lr = 3e-3;
  c.actor.optim.warmup_steps = 0;
  c.reward.function.type = RewardFunctionType::kPattern;
  c.reward.function.pattern = {1, 2};
  c.generation.max_new_tokens = 5;
  c.generation.do_sample = true;
  c.generation.stop_tokens = {7};  // responses of different lengths
  c.ppo.advantage_estimator = AdvantageEstimator::kGrpo;
  c.ppo.group_size = 2;
  c.ppo.rollout_batch = 6;
  c.ppo.minibatch = 4;
  c.ppo.epochs = 2;
  return c;
}

TEST(ActorInvariance, PermutedSamplesTrainToBitwiseIdenticalWeights) {
  const PpoConfig c = deterministic_config();
  auto a = make_role(RoleKind::kActor, c), b = make_role(RoleKind::kActor, c);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t i = 0; i < 12; ++i)
    prompts.push_back(i % 3 == 0 ? std::vector<int64_t>{1 + i % 7} : std::vector<int64_t>{1 + i % 7, 1 + (2 * i) % 7});
  const models::PaddedBatch p = models::left_pad(prompts, 0);
  const GenerateReply gen = from_message<GenerateReply>(a->handle(to_message(GenerateRequest{p.ids, p.mask, 99})));
  const Rollout& r = gen.rollout;
  const torch::Tensor old = from_message<LogprobsReply>(a->handle(to_message(LogprobsRequest{r}))).logprobs;
  // The sampler reported exactly what the trainer computes.
  EXPECT_TRUE(torch::equal(r.sample_logprobs, old * r.response_mask));
  const torch::Tensor lengths = r.response_mask.sum(1);
  EXPECT_GT(lengths.max().item<double>(), lengths.min().item<double>()) << "want responses of several lengths";
  const torch::Tensor adv = torch::randn({r.size()}).unsqueeze(1) * r.response_mask;
  const torch::Tensor ids = torch::arange(r.size(), torch::kLong);

  TrainPolicyRequest in_order{r, old, old, adv, 0.0, 0, 0, ids};
  const torch::Tensor perm = torch::randperm(r.size(), torch::kLong);
  TrainPolicyRequest shuffled{r.select(perm),
                              old.index_select(0, perm),
                              old.index_select(0, perm),
                              adv.index_select(0, perm),
                              0.0,
                              0,
                              0,
                              ids.index_select(0, perm)};
  const TrainReply ra = from_message<TrainReply>(a->handle(to_message(in_order)));
  const TrainReply rb = from_message<TrainReply>(b->handle(to_message(shuffled)));
  EXPECT_EQ(ra.metrics, rb.metrics);
  const RoleState sa = from_message<RoleState>(a->handle(to_message(SaveStateRequest{})));
  const RoleState sb = from_message<RoleState>(b->handle(to_message(SaveStateRequest{})));
  ASSERT_EQ(sa.model.tensors.size(), sb.model.tensors.size());
  for (const auto& [name, t] : sa.model.tensors) EXPECT_TRUE(torch::equal(t, sb.model.tensors.at(name))) << name;
  // (The optimizer blobs are torch archives with a random serialization id: not comparable as bytes. The weights
  // after two epochs of three Adam steps each already depend on the moments.)

  // Without sample ids the permuted batch is a different minibatch schedule: the weights differ (the test can fail).
  auto c2 = make_role(RoleKind::kActor, c);
  shuffled.sample_ids = torch::Tensor();
  from_message<TrainReply>(c2->handle(to_message(shuffled)));
  const RoleState sc = from_message<RoleState>(c2->handle(to_message(SaveStateRequest{})));
  bool all_equal = true;
  for (const auto& [name, t] : sa.model.tensors) all_equal &= torch::equal(t, sc.model.tensors.at(name));
  EXPECT_FALSE(all_equal);
}

// A weight push is versioned and checksummed: the rollout worker takes weights whose checksum matches and samples
// with them at that version; a push whose bytes changed on the way is refused.
TEST(RolloutRole, TakesCheckedWeightPushesAndRefusesCorruptedOnes) {
  PpoConfig c = deterministic_config();
  c.ppo.async_rollouts.enabled = true;
  auto actor = make_role(RoleKind::kActor, c), rollout = make_role(RoleKind::kRollout, c);
  // A weights-only save (the push's request) carries the weights of a full save, and no optimizer state.
  const RoleState full = from_message<RoleState>(actor->handle(to_message(SaveStateRequest{})));
  RoleState state = from_message<RoleState>(actor->handle(to_message(SaveStateRequest{true})));
  EXPECT_FALSE(full.optimizer.empty());
  EXPECT_TRUE(state.optimizer.empty());
  EXPECT_EQ(state.checksum, full.checksum);
  ASSERT_EQ(state.checksum, weights_checksum(state.model));
  state.weight_version = 3;
  rollout->handle(to_message(state, /*as_request=*/true));
  const models::PaddedBatch p = models::left_pad({{1, 2}, {3}}, 0);
  const GenerateReply a = from_message<GenerateReply>(actor->handle(to_message(GenerateRequest{p.ids, p.mask, 5})));
  const GenerateReply b = from_message<GenerateReply>(rollout->handle(to_message(GenerateRequest{p.ids, p.mask, 5})));
  EXPECT_EQ(b.weight_version, 3);
  EXPECT_TRUE(torch::equal(a.rollout.sequences, b.rollout.sequences));  // same weights, same seed: same samples
  EXPECT_TRUE(torch::equal(a.rollout.sample_logprobs, b.rollout.sample_logprobs));
  RoleState corrupted = state;
  for (auto& [name, t] : corrupted.model.tensors) {
    if (!t.is_floating_point()) continue;
    t = t.clone();
    t.view(-1)[0] += 1.0f;  // one weight changed on the way
    break;
  }
  EXPECT_THROW(rollout->handle(to_message(corrupted, /*as_request=*/true)), ProtocolError);
}

}  // namespace
}  // namespace troupe::rlhf
