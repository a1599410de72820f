// The typed role protocol (rlhf/protocol.h): every request and reply survives to_message -> encode -> decode ->
// from_message unchanged, and a missing or misshapen field is a ProtocolError naming the message and the field.
#include "rlhf/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"

namespace troupe::rlhf {
namespace {

using distributed::Message;
using distributed::MessageType;
using ::testing::HasSubstr;

// Through the real wire format, as between processes.
Message over_the_wire(const Message& m) { return distributed::decode(distributed::encode(m)); }

template <class T>
T round_trip(const T& value) {
  return from_message<T>(over_the_wire(to_message(value)));
}

SequenceBatch batch() {
  SequenceBatch s;
  s.prompt_length = 2;
  s.sequences = torch::arange(10, torch::kLong).reshape({2, 5});
  s.attention_mask = torch::ones({2, 5}, torch::kLong);
  s.response_mask = torch::tensor({1.f, 1.f, 0.f, 1.f, 1.f, 1.f}).reshape({2, 3});
  return s;
}

RoleState round_trip_state(const RoleState& s) {
  return from_message<RoleState>(over_the_wire(to_message(s, /*as_request=*/false)));
}

void expect_same(const SequenceBatch& a, const SequenceBatch& b) {
  EXPECT_EQ(a.prompt_length, b.prompt_length);
  EXPECT_TRUE(torch::equal(a.sequences, b.sequences));
  EXPECT_TRUE(torch::equal(a.attention_mask, b.attention_mask));
  EXPECT_TRUE(torch::equal(a.response_mask, b.response_mask));
}

TEST(Protocol, RequestsRoundTripWithTheirMessageTypes) {
  const GenerateRequest g{torch::tensor({0, 3, 4, 5}, torch::kLong).reshape({2, 2}),
                          torch::tensor({0, 1, 1, 1}, torch::kLong).reshape({2, 2}), (uint64_t{1} << 52) + 7};
  EXPECT_EQ(to_message(g).type, MessageType::kGenerate);
  const auto g2 = round_trip(g);
  EXPECT_TRUE(torch::equal(g2.prompt_ids, g.prompt_ids));
  EXPECT_TRUE(torch::equal(g2.prompt_mask, g.prompt_mask));
  EXPECT_EQ(g2.seed, g.seed);  // exact below 2^53

  EXPECT_EQ(to_message(LogprobsRequest{batch()}).type, MessageType::kLogprobs);
  expect_same(round_trip(LogprobsRequest{batch()}).batch, batch());
  EXPECT_EQ(to_message(ValuesRequest{batch()}).type, MessageType::kValues);
  expect_same(round_trip(ValuesRequest{batch()}).batch, batch());

  const ScoreRequest s{batch(), torch::tensor({1.f, 0.f})};
  EXPECT_EQ(to_message(s).type, MessageType::kScore);
  EXPECT_TRUE(torch::equal(round_trip(s).eos, s.eos));

  const torch::Tensor a = torch::randn({2, 3}), b = torch::randn({2, 3}), c = torch::randn({2, 3});
  const TrainPolicyRequest p{batch(), a, b, c, 0.125, 7, 3, {}};
  const Message pm = to_message(p);
  EXPECT_EQ(pm.type, MessageType::kTrainPolicy);
  EXPECT_EQ(pm.step, 7);
  EXPECT_EQ(pm.weight_version, 3);
  const auto p2 = round_trip(p);
  EXPECT_TRUE(torch::equal(p2.old_logprobs, a));
  EXPECT_TRUE(torch::equal(p2.ref_logprobs, b));
  EXPECT_TRUE(torch::equal(p2.advantages, c));
  EXPECT_EQ(p2.kl_coef, 0.125);
  EXPECT_EQ(p2.iteration, 7);
  EXPECT_EQ(p2.weight_version, 3);

  const TrainValueRequest v{batch(), a, b, 9};
  EXPECT_EQ(to_message(v).type, MessageType::kTrainValue);
  const auto v2 = round_trip(v);
  EXPECT_TRUE(torch::equal(v2.old_values, a));
  EXPECT_TRUE(torch::equal(v2.returns, b));
  EXPECT_EQ(v2.iteration, 9);
  EXPECT_EQ(to_message(SaveStateRequest{}).type, MessageType::kSaveState);
  EXPECT_FALSE(round_trip(SaveStateRequest{}).weights_only);
  EXPECT_TRUE(round_trip(SaveStateRequest{true}).weights_only);
}

TEST(Protocol, RepliesRoundTrip) {
  GenerateReply g;
  static_cast<SequenceBatch&>(g.rollout) = batch();
  g.rollout.eos = torch::tensor({0.f, 1.f});
  g.rollout.sample_logprobs = -torch::rand({2, 3});
  g.weight_version = 4;
  const auto g2 = round_trip(g);
  expect_same(g2.rollout, batch());
  EXPECT_TRUE(torch::equal(g2.rollout.eos, g.rollout.eos));
  EXPECT_TRUE(torch::equal(g2.rollout.sample_logprobs, g.rollout.sample_logprobs));
  EXPECT_EQ(g2.weight_version, 4);

  const torch::Tensor x = torch::randn({2, 3});
  EXPECT_TRUE(torch::equal(round_trip(LogprobsReply{x, 2}).logprobs, x));
  EXPECT_EQ(round_trip(LogprobsReply{x, 2}).weight_version, 2);
  EXPECT_TRUE(torch::equal(round_trip(ValuesReply{x}).values, x));
  EXPECT_TRUE(torch::equal(round_trip(ScoreReply{torch::tensor({0.5f, 1.f})}).scores, torch::tensor({0.5f, 1.f})));

  TrainReply t{{{"actor/policy_loss", -0.25}, {"actor/lr", 1e-4}}, 5};
  Message tm = to_message(t);
  set_reply_seconds(tm, 1.5);  // the handler's time travels beside the metrics, not among them
  const auto t2 = from_message<TrainReply>(over_the_wire(tm));
  EXPECT_EQ(t2.metrics, t.metrics);
  EXPECT_EQ(t2.weight_version, 5);
  EXPECT_EQ(reply_seconds(over_the_wire(tm)), 1.5);
}

TEST(Protocol, RoleStateRoundTripsAsRequestAndReply) {
  RoleState s;
  s.model.tensors = {{"wte.weight", torch::randn({4, 2})}, {"ln_f.bias", torch::zeros({2})}};
  s.model.config_json = "{\"n_layer\": 1}";
  s.model.value_head = true;
  s.model.lora_alpha = 16;
  s.optimizer = std::string("\0\1\2 bytes", 9);
  s.ptx = std::vector<int64_t>{3, 1, 4};
  s.weight_version = 6;
  for (bool as_request : {true, false}) {
    const Message m = over_the_wire(to_message(s, as_request));
    EXPECT_EQ(m.type, as_request ? MessageType::kLoadState : MessageType::kReply);
    const RoleState r = from_message<RoleState>(m);
    ASSERT_EQ(r.model.tensors.size(), 2u);
    EXPECT_TRUE(torch::equal(r.model.tensors.at("wte.weight"), s.model.tensors.at("wte.weight")));
    EXPECT_EQ(r.model.config_json, s.model.config_json);
    EXPECT_TRUE(r.model.value_head);
    EXPECT_FALSE(r.model.reward_head);
    EXPECT_EQ(r.model.lora_alpha, 16);
    EXPECT_EQ(r.optimizer, s.optimizer);
    EXPECT_EQ(r.ptx, s.ptx);
    EXPECT_EQ(r.weight_version, 6);
  }
  RoleState empty;
  empty.weight_version = 2;
  const RoleState e = round_trip_state(empty);
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.weight_version, 2);
}

TEST(Protocol, MissingOrMisshapenFieldsNameTheMessageAndField) {
  Message m = to_message(
      TrainPolicyRequest{batch(), torch::zeros({2, 3}), torch::zeros({2, 3}), torch::zeros({2, 4}), 0, 0, 0, {}});
  EXPECT_THAT([&] { from_message<TrainPolicyRequest>(m); },
              ::testing::ThrowsMessage<ProtocolError>(
                  HasSubstr("train_policy message: tensor 'advantages' has shape [2, 4], expected [2, 3]")));
  m.tensors.pop_back();
  EXPECT_THAT([&] { from_message<TrainPolicyRequest>(m); },
              ::testing::ThrowsMessage<ProtocolError>(HasSubstr("has no tensor 'advantages'")));
  Message score = to_message(ScoreRequest{batch(), torch::zeros({3})});
  EXPECT_THAT([&] { from_message<ScoreRequest>(score); },
              ::testing::ThrowsMessage<ProtocolError>(HasSubstr("tensor 'eos' has shape [3], expected [2]")));
  SequenceBatch bad = batch();
  bad.response_mask = torch::ones({2, 2});  // T must be 5 - 2 = 3
  EXPECT_THAT([&] { from_message<LogprobsRequest>(to_message(LogprobsRequest{bad})); },
              ::testing::ThrowsMessage<ProtocolError>(HasSubstr("inconsistent rollout tensors")));
  Message no_seed =
      to_message(GenerateRequest{torch::zeros({1, 1}, torch::kLong), torch::ones({1, 1}, torch::kLong), 1});
  no_seed.scalars.clear();
  EXPECT_THAT([&] { from_message<GenerateRequest>(no_seed); },
              ::testing::ThrowsMessage<ProtocolError>(HasSubstr("no scalar 'seed'")));
}

}  // namespace
}  // namespace troupe::rlhf
