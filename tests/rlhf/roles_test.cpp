// Tests for rlhf/roles.h, calling Role::handle directly (no transport): the actor's rollouts, log-probs, PPO update
// and its guards (off-policy version, first-minibatch ratio), the KL-in-loss term, the critic's values and value
// training, the pattern reward, the frozen reference, and the actor's save/load round trip. Not the controller.
#include "rlhf/roles.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint_manager.h"
#include "core/checkpoint_state.h"
#include "core/config_binder.h"
#include "core/errors.h"
#include "core/seeding.h"
#include "distributed/data_parallel.h"
#include "distributed/message.h"
#include "distributed/thread_communicator.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "rlhf/ppo_math.h"
#include "rlhf/protocol.h"
#include "rlhf/rollout.h"
#include "tests/support/test_support.h"
#include "tokenizers/token_file.h"

namespace troupe::rlhf {
namespace {

using distributed::Message;
using distributed::MessageType;

constexpr int64_t kBatch = 16;
constexpr int64_t kMaxNew = 4;

// The tiny end-to-end PPO config (vocab 8, pattern reward) bound in code. Roles keep a reference to the config,
// so every test keeps its PpoConfig alive for as long as its roles.
PpoConfig tiny_ppo_config() {
  PpoConfig c;
  c.seed = 7;
  c.actor.model.n_layer = 1;
  c.actor.model.n_head = 2;
  c.actor.model.n_embd = 32;
  c.actor.model.block_size = 16;
  c.actor.model.vocab_size = 8;
  c.actor.model.dropout = 0.0;
  c.actor.optim.lr = 3e-3;
  c.actor.optim.warmup_steps = 0;
  c.actor.optim.schedule = models::LrSchedule::kConstant;
  c.critic.optim = c.actor.optim;
  c.reward.function.type = RewardFunctionType::kPattern;
  c.reward.function.pattern = {3, 5, 1, 6};
  c.generation.max_new_tokens = kMaxNew;
  c.generation.do_sample = true;
  c.ppo.iterations = 40;
  c.ppo.rollout_batch = 32;
  c.ppo.minibatch = 8;
  c.ppo.epochs = 2;
  c.ppo.kl.init_coef = 0.02;
  return c;
}

// kBatch prompts of 1 or 2 ids in [1, 8), left padded.
Message generate_request(uint64_t seed) {
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t i = 0; i < kBatch; ++i) {
    std::vector<int64_t> p = {1 + i % 7};
    if (i % 3 != 0) p.push_back(1 + (3 * i + 2) % 7);
    prompts.push_back(p);
  }
  const models::PaddedBatch p = models::left_pad(prompts, 0);
  return to_message(GenerateRequest{p.ids, p.mask, seed});
}

// The sequences of a kGenerate reply.
SequenceBatch batch_of(const Message& rollout) { return from_message<GenerateReply>(rollout).rollout; }

// A request of `type` carrying the sequences of a kGenerate reply (the protocol's batch fields; tests add the rest).
Message batch_request(MessageType type, const Message& rollout) {
  Message m = to_message(LogprobsRequest{batch_of(rollout)});
  m.type = type;
  return m;
}

// Fixed advantages: +1 on even response tokens, −1 on odd ones, 0 at padding. [B, T]
torch::Tensor fixed_advantages(const Message& rollout) {
  const SequenceBatch s = batch_of(rollout);
  const torch::Tensor response = s.sequences.slice(1, s.prompt_length);
  return (1.0 - 2.0 * response.remainder(2).to(torch::kFloat32)) * s.response_mask;
}

Message train_request(const Message& rollout, const torch::Tensor& old_logprobs, const torch::Tensor& ref_logprobs,
                      double kl_coef, int64_t iteration, int64_t weight_version) {
  return to_message(TrainPolicyRequest{batch_of(rollout),
                                       old_logprobs,
                                       ref_logprobs,
                                       fixed_advantages(rollout),
                                       kl_coef,
                                       iteration,
                                       weight_version,
                                       {}});
}

torch::Tensor logprobs_of(Role& role, const Message& rollout) {
  return role.handle(batch_request(MessageType::kLogprobs, rollout)).tensor("logprobs");
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return ((a - b) * mask).abs().max().item<double>();
}

// what() of the troupe::Error `f` throws; a test failure (and "") when it throws none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a troupe::Error";
  return "";
}

TEST(Roles, MakeRoleBuildsTheFourRolesAndRejectsOthers) {
  const PpoConfig c = tiny_ppo_config();
  for (const std::string& name : role_names()) EXPECT_EQ(make_role(name, c)->name(), name);
  EXPECT_THROW(make_role("judge", c), ConfigError);
}

TEST(Roles, RoleKindsRoundTripThroughTheirNames) {
  const PpoConfig c = tiny_ppo_config();
  ASSERT_EQ(role_names().size(), kRoleKinds.size());
  for (size_t i = 0; i < kRoleKinds.size(); ++i) {
    const RoleKind k = kRoleKinds[i];
    EXPECT_EQ(role_names()[i], role_name(k));
    EXPECT_EQ(role_kind(role_name(k)), k);
    EXPECT_TRUE(is_role_name(role_name(k)));
    EXPECT_EQ(make_role(k, c)->name(), role_name(k));
  }
  EXPECT_FALSE(is_role_name("Actor"));
  EXPECT_THROW(role_kind("critc"), ConfigError);
  RoleMap<int> counts;
  counts[RoleKind::kReward] += 2;
  EXPECT_EQ(counts[RoleKind::kReward], 2);
  EXPECT_EQ(counts[RoleKind::kActor], 0);
}

TEST(ActorRole, GenerateReplyCarriesTheRollout) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  Message request = generate_request(1);
  request.step = 3;
  const Message gen = actor->handle(request);
  EXPECT_EQ(gen.type, MessageType::kReply);
  EXPECT_EQ(gen.step, 3);
  EXPECT_EQ(gen.weight_version, 0);
  EXPECT_GE(reply_seconds(gen), 0.0);
  EXPECT_GT(gen.scalars.count("time_s"), 0u);
  const SequenceBatch s = batch_of(gen);
  const int64_t P = request.tensor("prompt_ids").size(1);
  EXPECT_EQ(s.prompt_length, P);
  EXPECT_EQ(s.sequences.sizes(), (std::vector<int64_t>{kBatch, P + kMaxNew}));  // no stop tokens: full length
  EXPECT_TRUE(torch::equal(s.sequences.slice(1, 0, P), request.tensor("prompt_ids")));
  EXPECT_EQ(gen.tensor("eos").sizes(), (std::vector<int64_t>{kBatch}));
  EXPECT_EQ(gen.tensor("eos").sum().item<double>(), 0.0);
  EXPECT_EQ(gen.tensor("sample_logprobs").sizes(), s.response_mask.sizes());
  EXPECT_EQ(s.response_mask.sum().item<double>(), static_cast<double>(kBatch * kMaxNew));
  // Same seed, same rollout.
  EXPECT_TRUE(torch::equal(batch_of(actor->handle(generate_request(1))).sequences, s.sequences));
}

TEST(ActorRole, LogprobsEqualTheSamplingLogprobs) {
  const PpoConfig c = tiny_ppo_config();  // temperature 1, no top-k / top-p
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(2));
  const Message reply = actor->handle(batch_request(MessageType::kLogprobs, gen));
  EXPECT_EQ(reply.weight_version, 0);
  const torch::Tensor lp = reply.tensor("logprobs");
  const torch::Tensor mask = gen.tensor("response_mask");
  ASSERT_EQ(lp.sizes(), mask.sizes());
  EXPECT_LT(max_abs_diff(lp, gen.tensor("sample_logprobs"), mask), 1e-5);
  EXPECT_LT(lp.max().item<double>(), 0.0);
}

TEST(ActorRole, RefusesOffPolicyAndStaleLogprobs) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(3));
  const torch::Tensor old = logprobs_of(*actor, gen);
  const torch::Tensor mask = gen.tensor("response_mask");

  const std::string off = error_of([&] { actor->handle(train_request(gen, old, old, 0.02, 0, /*version=*/1)); });
  EXPECT_NE(off.find("off-policy"), std::string::npos) << off;

  const torch::Tensor stale = old + 0.5 * mask;
  const std::string ratio = error_of([&] { actor->handle(train_request(gen, stale, old, 0.02, 0, 0)); });
  EXPECT_NE(ratio.find("ratio"), std::string::npos) << ratio;

  // Neither refusal changed the policy or its version.
  const Message again = actor->handle(batch_request(MessageType::kLogprobs, gen));
  EXPECT_EQ(again.weight_version, 0);
  EXPECT_TRUE(torch::equal(again.tensor("logprobs"), old));
}

TEST(ActorRole, StaleLogprobsTrainWhenTheRatioCheckIsOff) {
  PpoConfig c = tiny_ppo_config();
  c.ppo.assert_first_ratio = false;
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(3));
  const torch::Tensor old = logprobs_of(*actor, gen);
  const Message reply = actor->handle(train_request(gen, old + 0.5 * gen.tensor("response_mask"), old, 0.02, 0, 0));
  EXPECT_EQ(reply.weight_version, 1);
  // On the first minibatch every ratio is e^−0.5 ≈ 0.607 (later ones see a moved policy).
  EXPECT_LE(reply.scalar("actor/ratio_min"), std::exp(-0.5) + 1e-4);
  EXPECT_GT(reply.scalar("actor/ratio_min"), 0.0);
}

TEST(ActorRole, TrainingBumpsTheVersionAndReportsMetrics) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(4));
  const torch::Tensor old = logprobs_of(*actor, gen);
  const Message reply = actor->handle(train_request(gen, old, old, 0.02, /*iteration=*/0, /*version=*/0));
  EXPECT_EQ(reply.type, MessageType::kReply);
  EXPECT_EQ(reply.weight_version, 1);
  for (const char* key : {"actor/policy_loss", "actor/clip_fraction", "actor/approx_kl", "actor/entropy",
                          "actor/ratio_min", "actor/ratio_max"}) {
    ASSERT_EQ(reply.scalars.count(key), 1u) << key;
    EXPECT_TRUE(std::isfinite(reply.scalar(key))) << key;
  }
  EXPECT_GE(reply.scalar("actor/clip_fraction"), 0.0);
  EXPECT_LE(reply.scalar("actor/clip_fraction"), 1.0);
  EXPECT_GE(reply.scalar("actor/approx_kl"), 0.0);
  EXPECT_GT(reply.scalar("actor/entropy"), 0.0);
  EXPECT_LE(reply.scalar("actor/entropy"), std::log(8.0) + 1e-6);
  // The first minibatch sees ratio 1; later minibatches see a moved policy.
  EXPECT_LE(reply.scalar("actor/ratio_min"), 1.0 + 1e-4);
  EXPECT_GE(reply.scalar("actor/ratio_max"), 1.0 - 1e-4);
  EXPECT_LT(reply.scalar("actor/ratio_min"), reply.scalar("actor/ratio_max"));
  EXPECT_EQ(reply.scalar("actor/kl_loss"), 0.0);  // kl_mode reward: no KL term in the loss

  // The policy moved, and the positive-advantage (even) tokens became more likely on average.
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor after = logprobs_of(*actor, gen);
  EXPECT_GT(max_abs_diff(after, old, mask), 1e-4);
  const torch::Tensor adv = fixed_advantages(gen);
  EXPECT_GT(masked_sum((after - old) * adv, mask).item<double>(), 0.0);

  // New rollouts carry the new version; the old rollout is now off-policy.
  const Message gen2 = actor->handle(generate_request(5));
  EXPECT_EQ(gen2.weight_version, 1);
  const std::string off = error_of([&] { actor->handle(train_request(gen, after, after, 0.02, 1, 0)); });
  EXPECT_NE(off.find("off-policy"), std::string::npos) << off;
  const Message reply2 = actor->handle(train_request(gen2, logprobs_of(*actor, gen2), old, 0.02, 1, 1));
  EXPECT_EQ(reply2.weight_version, 2);
}

TEST(ActorRole, KlLossIsZeroAtTheReferenceAndPositiveAfterMoving) {
  PpoConfig c = tiny_ppo_config();
  c.ppo.kl_mode = KlMode::kLoss;
  c.ppo.kl_estimator = KlEstimator::kK3;
  c.ppo.epochs = 1;
  c.ppo.minibatch = kBatch;  // one minibatch per update: the reported KL is the first minibatch's
  auto actor = make_role("actor", c);
  auto reference = make_role("reference", c);
  const double kl_coef = 0.5;

  const Message gen1 = actor->handle(generate_request(6));
  const torch::Tensor ref1 = logprobs_of(*reference, gen1);
  const Message r1 = actor->handle(train_request(gen1, logprobs_of(*actor, gen1), ref1, kl_coef, 0, 0));
  EXPECT_GE(r1.scalar("actor/kl_loss"), 0.0);   // k3 is non-negative
  EXPECT_LT(r1.scalar("actor/kl_loss"), 1e-9);  // policy == reference

  // Train again on a fresh rollout: the KL term is now the k3 estimate between the moved policy and the reference.
  const Message gen2 = actor->handle(generate_request(7));
  ASSERT_EQ(gen2.weight_version, 1);
  const torch::Tensor old2 = logprobs_of(*actor, gen2);
  const torch::Tensor ref2 = logprobs_of(*reference, gen2);
  const torch::Tensor mask = gen2.tensor("response_mask");
  const double expected = masked_mean(kl_estimate(old2, ref2, KlEstimator::kK3), mask).item<double>();
  const Message r2 = actor->handle(train_request(gen2, old2, ref2, kl_coef, 1, 1));
  EXPECT_GT(r2.scalar("actor/kl_loss"), 1e-4);  // about 0.009 here
  EXPECT_NEAR(r2.scalar("actor/kl_loss"), expected, 1e-3 * expected + 1e-9);
}

TEST(CriticRole, ValuesHaveTheResponseShape) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  auto critic = make_role("critic", c);
  const Message gen = actor->handle(generate_request(8));
  const torch::Tensor values = critic->handle(batch_request(MessageType::kValues, gen)).tensor("values");
  EXPECT_EQ(values.sizes(), gen.tensor("response_mask").sizes());
  EXPECT_EQ(values.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(values).all().item<bool>());
  EXPECT_THROW(critic->handle(generate_request(1)), ProtocolError);
}

TEST(CriticRole, ValueTrainingFitsFixedReturns) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  auto critic = make_role("critic", c);
  const Message gen = actor->handle(generate_request(9));
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor returns = (1.0 + 0.25 * torch::arange(kMaxNew, torch::kFloat32)).expand_as(mask) * mask;
  std::vector<double> losses;
  for (int64_t i = 0; i < 20; ++i) {
    // As in PPO, each update clips around the values the critic gave before it.
    Message m = batch_request(MessageType::kTrainValue, gen);
    m.tensors.emplace_back("old_values", critic->handle(batch_request(MessageType::kValues, gen)).tensor("values"));
    m.tensors.emplace_back("returns", returns);
    m.step = i;
    const Message reply = critic->handle(m);
    losses.push_back(reply.scalar("critic/value_loss"));
    EXPECT_TRUE(std::isfinite(reply.scalar("critic/grad_norm")));
  }
  EXPECT_LT(losses.back(), losses.front() / 10) << losses.front() << " -> " << losses.back();
  const torch::Tensor values = critic->handle(batch_request(MessageType::kValues, gen)).tensor("values");
  EXPECT_LT(max_abs_diff(values, returns, mask), 0.5);
}

// Rows: prompt (P = 2) | response (T = 5). Pattern (3, 5, 1, 6); a final EOS token is not part of the response.
TEST(RewardRole, PatternScoresAreTheFractionOfMatches) {
  const PpoConfig c = tiny_ppo_config();
  auto reward = make_role("reward", c);
  Message m(MessageType::kScore);
  SequenceBatch s;
  s.prompt_length = 2;
  s.sequences = torch::tensor(std::vector<int64_t>{0, 2, 3, 5, 1, 6, 0,   // full match, truncated    -> 4/4
                                                   3, 5, 3, 5, 2, 2, 7,   // half, then EOS 7         -> 2/4
                                                   3, 5, 2, 2, 2, 2, 2,   // none (prompt ignored)    -> 0
                                                   0, 4, 3, 5, 1, 6, 0,   // 6 is the EOS: (3, 5, 1)  -> 3/4
                                                   1, 1, 3, 5, 1, 6, 6},  // one real token; pad ignored -> 1/4
                              torch::kLong)
                    .reshape({5, 7});
  s.attention_mask = torch::tensor(std::vector<int64_t>{0, 1, 1, 1, 1, 1, 0,  //
                                                        1, 1, 1, 1, 1, 1, 1,  //
                                                        1, 1, 1, 1, 1, 1, 1,  //
                                                        0, 1, 1, 1, 1, 1, 0,  //
                                                        1, 1, 1, 0, 0, 0, 0},
                                   torch::kLong)
                         .reshape({5, 7});
  s.response_mask = s.attention_mask.slice(1, 2).to(torch::kFloat32);
  m = to_message(ScoreRequest{s, torch::tensor(std::vector<float>{0, 1, 0, 1, 0})});
  const torch::Tensor scores = reward->handle(m).tensor("scores");
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{5}));
  EXPECT_EQ(scores.scalar_type(), torch::kFloat32);
  const std::vector<float> expected = {1.0f, 0.5f, 0.0f, 0.75f, 0.25f};
  for (int64_t b = 0; b < 5; ++b) EXPECT_FLOAT_EQ(scores[b].item<float>(), expected[static_cast<size_t>(b)]) << b;

  EXPECT_THROW(reward->handle(to_message(LogprobsRequest{s})), ProtocolError);
}

TEST(ReferenceRole, MatchesTheUntrainedActorAndAnswersOnlyLogprobs) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  auto reference = make_role("reference", c);
  const Message gen = actor->handle(generate_request(10));
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor ref = logprobs_of(*reference, gen);
  EXPECT_LT(max_abs_diff(ref, logprobs_of(*actor, gen), mask), 1e-6);
  EXPECT_THROW(reference->handle(generate_request(1)), ProtocolError);
  EXPECT_THROW(reference->handle(batch_request(MessageType::kTrainPolicy, gen)), ProtocolError);

  // Another seed builds another policy.
  PpoConfig other = tiny_ppo_config();
  other.seed = 8;
  auto other_reference = make_role("reference", other);
  EXPECT_GT(max_abs_diff(logprobs_of(*other_reference, gen), ref, mask), 1e-3);
}

// reference.quantization: the frozen reference runs int8 or NF4 weights; its log-probs stay close to the
// full-precision reference's (the same starting policy) without being equal to them.
TEST(ReferenceRole, QuantizedReferenceIsCloseToTheFullPrecisionOne) {
  PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(11));
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor full = logprobs_of(*make_role("reference", c), gen);
  for (auto [scheme, tolerance] : {std::pair{models::QuantScheme::kInt8, 0.05}, {models::QuantScheme::kNf4, 0.5}}) {
    c.reference.quantization.scheme = scheme;
    c.reference.quantization.group = 32;  // the tiny model's width
    c.reference.quantization.embedding = true;
    const torch::Tensor q = logprobs_of(*make_role("reference", c), gen);
    const double diff = max_abs_diff(q, full, mask);
    EXPECT_GT(diff, 0.0) << models::quant_scheme_name(scheme);
    EXPECT_LT(diff, tolerance) << models::quant_scheme_name(scheme);
  }
}

// QLoRA as the actor (actor.quantization nf4 + actor.lora): training moves only the adapters, the policy moves
// towards the advantages, and the state (NF4 codes + adapters) loads into a fresh QLoRA actor exactly.
TEST(ActorRole, QloraActorTrainsItsAdaptersAndTransfersItsState) {
  PpoConfig c = tiny_ppo_config();
  c.actor.quantization.scheme = models::QuantScheme::kNf4;
  c.actor.quantization.group = 32;
  c.actor.lora.rank = 4;
  c.actor.lora.alpha = 8;
  c.actor.lora.targets = {"*"};
  c.actor.optim.lr = 3e-2;
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(4));
  const torch::Tensor old = logprobs_of(*actor, gen);
  const Message reply = actor->handle(train_request(gen, old, old, 0.02, 0, 0));
  EXPECT_EQ(reply.weight_version, 1);
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor after = logprobs_of(*actor, gen);
  EXPECT_GT(max_abs_diff(after, old, mask), 1e-4);
  EXPECT_GT(masked_sum((after - old) * fixed_advantages(gen), mask).item<double>(), 0.0);

  const RoleState state = from_message<RoleState>(actor->handle(to_message(SaveStateRequest{})));
  bool adapters = false, codes = false;
  for (const auto& [name, t] : state.model.tensors) {
    adapters = adapters || name.find(".lora_A") != std::string::npos;
    codes = codes || name.find(".qweight") != std::string::npos;
  }
  EXPECT_TRUE(adapters && codes);
  auto second = make_role("actor", c);
  second->handle(to_message(state, /*as_request=*/true));
  EXPECT_TRUE(torch::equal(logprobs_of(*second, gen), after));

  c.actor.lora.rank = 0;  // a quantized base with nothing to train is a config error
  core::OriginMap origins;
  core::ConfigValidator v(origins, "actor");
  EXPECT_THROW(c.actor.validate(v), ConfigError);
}

TEST(ActorRole, SaveAndLoadStateTransferWeightsAndOptimizer) {
  const PpoConfig c = tiny_ppo_config();
  auto first = make_role("actor", c);
  const Message gen = first->handle(generate_request(11));
  first->handle(train_request(gen, logprobs_of(*first, gen), logprobs_of(*first, gen), 0.02, 0, 0));

  const Message saved = first->handle(to_message(SaveStateRequest{}));
  EXPECT_EQ(saved.weight_version, 1);
  const Message load = to_message(from_message<RoleState>(saved), /*as_request=*/true);
  auto second = make_role("actor", c);
  const torch::Tensor mask = gen.tensor("response_mask");
  const torch::Tensor trained = logprobs_of(*first, gen);
  EXPECT_GT(max_abs_diff(logprobs_of(*second, gen), trained, mask), 1e-4);  // fresh: still the starting policy
  EXPECT_EQ(second->handle(load).weight_version, 1);
  EXPECT_TRUE(torch::equal(logprobs_of(*second, gen), trained));

  // A further identical step gives identical results: the AdamW moments and step count came along too.
  const Message gen_a = first->handle(generate_request(12));
  const Message gen_b = second->handle(generate_request(12));
  EXPECT_EQ(gen_b.weight_version, 1);
  ASSERT_TRUE(torch::equal(gen_a.tensor("sequences"), gen_b.tensor("sequences")));
  const torch::Tensor old = logprobs_of(*first, gen_a);
  const Message ra = first->handle(train_request(gen_a, old, old, 0.02, 1, 1));
  const Message rb = second->handle(train_request(gen_b, old, old, 0.02, 1, 1));
  EXPECT_EQ(ra.weight_version, 2);
  EXPECT_EQ(rb.weight_version, 2);
  EXPECT_EQ(ra.scalar("actor/policy_loss"), rb.scalar("actor/policy_loss"));
  EXPECT_EQ(ra.scalar("actor/grad_norm"), rb.scalar("actor/grad_norm"));
  EXPECT_TRUE(torch::equal(logprobs_of(*first, gen_a), logprobs_of(*second, gen_a)));
}

// The same step on the loaded weights WITHOUT the optimizer state differs: the check above can fail.
TEST(ActorRole, WeightsAloneDoNotReproduceTheNextStep) {
  const PpoConfig c = tiny_ppo_config();
  auto first = make_role("actor", c);
  const Message gen = first->handle(generate_request(11));
  first->handle(train_request(gen, logprobs_of(*first, gen), logprobs_of(*first, gen), 0.02, 0, 0));
  const Message saved = first->handle(to_message(SaveStateRequest{}));

  // A second actor trained to the same weights by a different optimizer history is impractical; instead load the
  // saved weights together with the optimizer state of an untouched actor.
  auto second = make_role("actor", c);
  RoleState mixed = from_message<RoleState>(saved);
  mixed.optimizer = from_message<RoleState>(second->handle(to_message(SaveStateRequest{}))).optimizer;
  second->handle(to_message(mixed, /*as_request=*/true));
  const Message gen_a = first->handle(generate_request(12));
  const torch::Tensor old = logprobs_of(*first, gen_a);
  first->handle(train_request(gen_a, old, old, 0.02, 1, 1));
  second->handle(train_request(gen_a, old, old, 0.02, 1, 1));
  EXPECT_GT(max_abs_diff(logprobs_of(*first, gen_a), logprobs_of(*second, gen_a), gen_a.tensor("response_mask")), 1e-6);
}

}  // namespace
}  // namespace troupe::rlhf

namespace troupe::rlhf {
namespace {

// PPO-ptx (InstructGPT): the pretraining term is reported (≈ ln 8 for an untrained model over 8 ids), pulls the
// policy towards the pretraining data, and its sampler cursor travels with the actor's state.
TEST(ActorRole, PtxMixesAPretrainingLossAndSavesItsCursor) {
  testing::ScratchDir dir;
  {
    tokenizers::TokenFileWriter writer(dir / "ptx.bin", 8, "synthetic");
    std::vector<int> ids;
    for (int i = 0; i < 4000; ++i) ids.push_back(1 + (i % 7));  // 1 2 3 4 5 6 7 1 2 ...: learnable
    writer.append(ids);
    writer.end_document();
    writer.finish();
  }
  PpoConfig c = tiny_ppo_config();
  c.ppo.ptx_coef = 1.0;
  c.ppo.ptx_data = (dir / "ptx.bin").string();
  c.ppo.ptx_batch = 4;
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(4));
  const torch::Tensor old = logprobs_of(*actor, gen);
  const Message first = actor->handle(train_request(gen, old, old, 0.02, 0, 0));
  EXPECT_NEAR(first.scalar("actor/ptx_loss"), std::log(8.0), 0.5);
  double last = first.scalar("actor/ptx_loss");
  for (int64_t it = 1; it < 6; ++it) {
    const Message g = actor->handle(generate_request(10 + static_cast<uint64_t>(it)));
    const torch::Tensor lp = logprobs_of(*actor, g);
    last = actor->handle(train_request(g, lp, lp, 0.02, it, it)).scalar("actor/ptx_loss");
  }
  EXPECT_LT(last, first.scalar("actor/ptx_loss") - 0.2) << "the pretraining term is being optimised";
  const RoleState state = from_message<RoleState>(actor->handle(to_message(SaveStateRequest{})));
  ASSERT_TRUE(state.ptx.has_value());
  EXPECT_GT(state.ptx->size(), 0u);
}

}  // namespace
}  // namespace troupe::rlhf

namespace troupe::rlhf {
namespace {

// A reward-model checkpoint as `troupe train rm` leaves it (GPT with a reward head + reward.mean / reward.std):
// the reward role scores with it, and with reward.normalize the scores are (r − mean) / std.
TEST(RewardRole, ScoresWithARewardModelCheckpointAndNormalises) {
  testing::ScratchDir dir;
  PpoConfig c = tiny_ppo_config();
  {
    models::GptHeads heads;
    heads.reward = true;
    torch::manual_seed(3);
    models::Gpt rm(c.actor.model, heads);
    core::CheckpointState state;
    state.step = 1;
    models::add_gpt_to_checkpoint(state, "model", rm);
    state.extra["reward.mean"] = 0.25;
    state.extra["reward.std"] = 2.0;
    core::CheckpointOptions o;
    o.root = dir / "rm" / "checkpoints";
    core::CheckpointManager(o).save(state);
  }
  c.reward.model = (dir / "rm").string();
  auto actor = make_role("actor", c);
  const Message gen = actor->handle(generate_request(4));
  Message score = batch_request(MessageType::kScore, gen);
  score.tensors.emplace_back("eos", gen.tensor("eos"));
  const torch::Tensor raw = make_role("reward", c)->handle(score).tensor("scores");
  ASSERT_EQ(raw.size(0), kBatch);
  EXPECT_GT(raw.std().item<float>(), 0.0f) << "a random reward head still tells rollouts apart";
  c.reward.normalize = true;
  const torch::Tensor normalised = make_role("reward", c)->handle(score).tensor("scores");
  EXPECT_TRUE(torch::allclose(normalised, (raw - 0.25) / 2.0, 1e-5, 1e-6));

  // reward.quantization: the same reward model in int8 scores within a small distance of the fp32 one
  c.reward.normalize = false;
  c.reward.quantization.scheme = models::QuantScheme::kInt8;
  c.reward.quantization.embedding = true;
  const torch::Tensor quantized = make_role("reward", c)->handle(score).tensor("scores");
  EXPECT_FALSE(torch::equal(quantized, raw));
  EXPECT_LT((quantized - raw).abs().max().item<float>(), 0.05f * raw.abs().max().item<float>() + 1e-3f);
  c.reward.quantization.scheme = models::QuantScheme::kNone;

  c.reward.model = (dir / "missing").string();
  EXPECT_THROW(make_role("reward", c), Error);
}

// The roles' data parallelism in one process: W ranks as threads of an in-memory group (every rank gets every
// request, as the group relay delivers them) compute what one rank does: the same PPO update (metrics and the
// log-probs after it), the same value update and the same gathered values, up to float summation order. W = 3
// leaves uneven row shares (minibatch 8).
TEST(RolesDataParallel, ActorAndCriticGroupsOfThreadsMatchOneRank) {
  const PpoConfig c = tiny_ppo_config();
  auto actor = make_role("actor", c);
  auto critic = make_role("critic", c);
  const Message rollout = actor->handle(generate_request(3));
  const torch::Tensor old = logprobs_of(*actor, rollout);
  const Message train = train_request(rollout, old, old, 0.0, 0, 0);
  Message value_train = batch_request(MessageType::kTrainValue, rollout);
  value_train.tensors.emplace_back("old_values",
                                   critic->handle(batch_request(MessageType::kValues, rollout)).tensor("values"));
  value_train.tensors.emplace_back("returns", fixed_advantages(rollout));
  const Message actor_reply = actor->handle(train), critic_reply = critic->handle(value_train);
  const torch::Tensor after = logprobs_of(*actor, rollout);
  const torch::Tensor values = critic->handle(batch_request(MessageType::kValues, rollout)).tensor("values");
  const torch::Tensor mask = rollout.tensor("response_mask");

  for (int world : {2, 3}) {
    auto actor_comms = distributed::make_thread_group(world), critic_comms = distributed::make_thread_group(world);
    std::vector<std::unique_ptr<Role>> actors, critics;
    for (int r = 0; r < world; ++r) {  // built one after another: building seeds torch's global generator
      actors.push_back(make_role("actor", c, actor_comms[static_cast<size_t>(r)].get()));
      critics.push_back(make_role("critic", c, critic_comms[static_cast<size_t>(r)].get()));
    }
    std::vector<Message> actor_replies(static_cast<size_t>(world)), critic_replies(static_cast<size_t>(world));
    std::vector<torch::Tensor> afters(static_cast<size_t>(world)), value_sets(static_cast<size_t>(world));
    testing::on_rank_threads(world, [&](int r) {
      const auto i = static_cast<size_t>(r);
      actor_replies[i] = actors[i]->handle(train);
      critic_replies[i] = critics[i]->handle(value_train);
      afters[i] = logprobs_of(*actors[i], rollout);
      value_sets[i] = critics[i]->handle(batch_request(MessageType::kValues, rollout)).tensor("values");
    });
    for (int r = 0; r < world; ++r) {
      const auto i = static_cast<size_t>(r);
      EXPECT_LT(max_abs_diff(afters[i], after, mask), 1e-5) << "world " << world << " rank " << r;
      EXPECT_LT(max_abs_diff(value_sets[i], values, mask), 1e-5) << "world " << world << " rank " << r;
    }
    for (const char* k : {"actor/policy_loss", "actor/approx_kl", "actor/entropy", "actor/grad_norm"})
      EXPECT_NEAR(actor_replies[0].scalar(k), actor_reply.scalar(k), 1e-5) << k << ", world " << world;
    EXPECT_NEAR(critic_replies[0].scalar("critic/value_loss"), critic_reply.scalar("critic/value_loss"), 1e-6)
        << "world " << world;
  }
}

// A rollout worker group (placement.rollout_ranks) of W thread-ranks: rank r samples its share of the rows with
// the request's seed (r = 0) or one derived from it, and rank 0's reply holds every rank's rows in order, each
// equal to what one rollout worker samples for those prompts with that seed; weight pushes reach every rank.
TEST(RolloutGroup, RanksSampleTheirSharesAndRankZeroAssemblesThemInOrder) {
  PpoConfig c = tiny_ppo_config();
  c.ppo.async_rollouts.enabled = true;
  auto actor = make_role("actor", c);
  auto one = make_role("rollout", c);
  // Push weights that differ from the starting policy (one PPO step), so the group must have taken them.
  const Message gen0 = actor->handle(generate_request(11));
  actor->handle(train_request(gen0, logprobs_of(*actor, gen0), logprobs_of(*actor, gen0), 0.02, 0, 0));
  const Message push = to_message(from_message<RoleState>(actor->handle(to_message(SaveStateRequest{true}))), true);
  one->handle(push);

  const Message request = generate_request(5);
  const GenerateRequest r = from_message<GenerateRequest>(request);
  for (int world : {2, 3}) {
    auto comms = distributed::make_thread_group(world);
    std::vector<std::unique_ptr<Role>> ranks;
    for (int k = 0; k < world; ++k) ranks.push_back(make_role("rollout", c, comms[static_cast<size_t>(k)].get()));
    std::vector<Message> replies(static_cast<size_t>(world));
    testing::on_rank_threads(world, [&](int k) {
      ranks[static_cast<size_t>(k)]->handle(push);
      replies[static_cast<size_t>(k)] = ranks[static_cast<size_t>(k)]->handle(request);
    });
    const GenerateReply got = from_message<GenerateReply>(replies[0]);
    EXPECT_EQ(got.weight_version, 1);
    ASSERT_EQ(got.rollout.size(), kBatch);
    int64_t longest = 0;
    for (int k = 0; k < world; ++k) {
      const auto [begin, end] = distributed::shard_rows(kBatch, k, world);
      GenerateRequest part = r;
      part.prompt_ids = r.prompt_ids.slice(0, begin, end);
      part.prompt_mask = r.prompt_mask.slice(0, begin, end);
      if (k != 0) part.seed = core::derive_seed(r.seed, "rollout_rank", k) >> 11;
      const Rollout want = from_message<GenerateReply>(one->handle(to_message(part))).rollout;
      const Rollout have = select_rows(got.rollout, torch::arange(begin, end, torch::kLong));
      const int64_t T = want.response_length();
      longest = std::max(longest, T);
      EXPECT_TRUE(torch::equal(have.sequences.slice(1, 0, want.sequences.size(1)), want.sequences)) << world << k;
      EXPECT_TRUE(torch::equal(have.response_mask.slice(1, 0, T), want.response_mask)) << world << k;
      EXPECT_TRUE(torch::equal(have.sample_logprobs.slice(1, 0, T), want.sample_logprobs)) << world << k;
      EXPECT_TRUE(torch::equal(have.eos, want.eos)) << world << k;
      // Beyond the rank's own longest response: padding, masked out.
      EXPECT_EQ(have.response_mask.slice(1, T).sum().item<float>(), 0.0f);
    }
    EXPECT_EQ(got.rollout.response_length(), longest);
    // The sampler's log-probs are the pushed policy's (the actor's, recomputed) on every rank's rows.
    const torch::Tensor recomputed =
        actor->handle(batch_request(MessageType::kLogprobs, replies[0])).tensor("logprobs");
    EXPECT_LT(max_abs_diff(recomputed, got.rollout.sample_logprobs, got.rollout.response_mask), 1e-4);
  }

  // A rank that missed a push would sample from other weights: rank 0 refuses to reply with such a batch.
  auto comms = distributed::make_thread_group(2);
  std::vector<std::unique_ptr<Role>> ranks;
  for (int k = 0; k < 2; ++k) ranks.push_back(make_role("rollout", c, comms[static_cast<size_t>(k)].get()));
  std::string error;
  testing::on_rank_threads(2, [&](int k) {
    if (k == 0) ranks[0]->handle(push);
    try {
      ranks[static_cast<size_t>(k)]->handle(request);
    } catch (const ProtocolError& e) {
      if (k == 0) error = e.what();
    }
  });
  EXPECT_NE(error.find("rank 1 sampled with policy version 0, rank 0 with 1"), std::string::npos) << error;
}

// weight_sync: collective, in one process: the actor (group rank 0) broadcasts its weights to a 2-rank rollout
// group (ranks 1, 2) over a named thread group; every rollout rank ends with the actor's weights bit for bit (its
// own checksum of them equals the actor's) at the actor's version, and samples as the actor does.
TEST(RolloutGroup, CollectiveWeightBroadcastReachesEveryRank) {
  PpoConfig c = tiny_ppo_config();
  c.ppo.async_rollouts.enabled = true;
  auto actor = make_role("actor", c);
  const Message gen0 = actor->handle(generate_request(11));
  actor->handle(train_request(gen0, logprobs_of(*actor, gen0), logprobs_of(*actor, gen0), 0.02, 0, 0));
  const std::string want = from_message<RoleState>(actor->handle(to_message(SaveStateRequest{true}))).checksum;

  auto comms = distributed::make_thread_group(2);
  std::vector<std::unique_ptr<Role>> rollout;
  for (int k = 0; k < 2; ++k) rollout.push_back(make_role("rollout", c, comms[static_cast<size_t>(k)].get()));
  actor->handle(to_message(JoinWeightGroupRequest{"thread:roles-test", 0, 3}));
  for (auto& r : rollout) r->handle(to_message(JoinWeightGroupRequest{"thread:roles-test", 1, 3}));
  std::vector<Message> replies(3);
  testing::on_rank_threads(3, [&](int k) {
    Role& role = k == 0 ? *actor : *rollout[static_cast<size_t>(k - 1)];
    replies[static_cast<size_t>(k)] = role.handle(to_message(BroadcastWeightsRequest{1}));
  });
  for (const Message& m : replies) {
    const BroadcastWeightsReply r = from_message<BroadcastWeightsReply>(m);
    EXPECT_EQ(r.checksum, want);
    EXPECT_EQ(r.version, 1);
  }
  // The group samples with the pushed weights at the pushed version: its log-probs are the actor's.
  std::vector<Message> generated(2);
  testing::on_rank_threads(2, [&](int k) {
    generated[static_cast<size_t>(k)] = rollout[static_cast<size_t>(k)]->handle(generate_request(5));
  });
  EXPECT_EQ(generated[0].weight_version, 1);
  const torch::Tensor recomputed = logprobs_of(*actor, generated[0]);
  EXPECT_LT(max_abs_diff(recomputed, generated[0].tensor("sample_logprobs"), generated[0].tensor("response_mask")),
            1e-5);
  // The actor broadcasts only the version it holds.
  EXPECT_THROW(actor->handle(to_message(BroadcastWeightsRequest{5})), ProtocolError);
}

}  // namespace
}  // namespace troupe::rlhf
