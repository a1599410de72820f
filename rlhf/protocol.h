// The PPO role protocol: one plain struct per request and per reply, and the one place (protocol.cpp) where they
// become distributed::Message and back. Roles and the controller speak only these structs; a field a peer forgot or
// shaped wrongly is a ProtocolError naming the request and the field, never a silently missing tensor.
//
// Shapes: B rollouts, P prompt positions, T response positions (see rlhf/rollout.h for the rollout layout).
//
//   request              to               reply
//   GenerateRequest      actor            GenerateReply      (rank 0 of a group samples; the others reply empty)
//   LogprobsRequest      actor, reference LogprobsReply
//   ValuesRequest        critic           ValuesReply
//   ScoreRequest         reward           ScoreReply
//   TrainPolicyRequest   actor            TrainReply         (weight version + 1)
//   TrainValueRequest    critic           TrainReply
//   SaveStateRequest     actor, critic    RoleState          (rank 0 of a group; the others reply empty)
//   RoleState            actor, critic    (empty reply)      (a kLoadState request)
//   WeightGroupIdRequest actor            WeightGroupId      (ppo.async.weight_sync: collective, processes)
//   JoinWeightGroupRequest actor, rollout (empty reply)      (returns once every member has joined)
//   BroadcastWeightsRequest actor, rollout BroadcastWeightsReply (the actor sends, the rollout worker receives)
//
// Every reply also carries the seconds its handler took (reply_seconds), and every request the controller's
// iteration (Message::step) and the policy weight version it expects (Message::weight_version).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distributed/message.h"
#include "models/gpt_checkpoint.h"
#include "rlhf/rollout.h"

namespace troupe::rlhf {

struct GenerateRequest {
  at::Tensor prompt_ids;   // [B, P] int64, left-padded
  at::Tensor prompt_mask;  // [B, P] int64, 1 on real prompt tokens
  uint64_t seed = 0;       // sampling seed (< 2^53: it travels as a double)
  bool greedy = false;     // decode greedily instead of sampling (ReMax's baseline response)
};

struct GenerateReply {
  Rollout rollout;  // sequences [B, P+T], attention_mask, response_mask [B, T], eos [B], sample_logprobs [B, T]
  int64_t weight_version = 0;  // the policy version that sampled it
};

struct LogprobsRequest {
  SequenceBatch batch;
};
struct LogprobsReply {
  at::Tensor logprobs;  // [B, T] float32
  int64_t weight_version = 0;
};

struct ValuesRequest {
  SequenceBatch batch;
};
struct ValuesReply {
  at::Tensor values;  // [B, T] float32
};

struct ScoreRequest {
  SequenceBatch batch;
  at::Tensor eos;  // [B] float32: 1 when the response ended with a stop token
};
struct ScoreReply {
  at::Tensor scores;  // [B] float32
};

struct TrainPolicyRequest {
  SequenceBatch batch;
  at::Tensor old_logprobs;     // [B, T] under the policy that sampled the batch
  at::Tensor ref_logprobs;     // [B, T] under the reference
  at::Tensor advantages;       // [B, T]
  double kl_coef = 0;          // β of the KL loss term (kl_mode loss)
  int64_t iteration = 0;       // sets the learning rate and the minibatch schedule
  int64_t weight_version = 0;  // the version that sampled the batch: must be the actor's
  at::Tensor sample_ids{};     // [B] int64, optional: the actor trains on the rows in ascending sample-id order
  at::Tensor
      behaviour_logprobs{};  // [B, T], optional: the sampler's log-probs (asynchronous rollouts) for truncated IS
  double is_cap = 2.0;       // truncated importance sampling: weights min(π_old / π_behaviour, is_cap)
};

struct TrainValueRequest {
  SequenceBatch batch;
  at::Tensor old_values;  // [B, T]
  at::Tensor returns;     // [B, T]
  int64_t iteration = 0;
};

struct TrainReply {
  std::map<std::string, double> metrics;  // "actor/..." or "critic/..." means over the update's optimizer steps
  int64_t weight_version = 0;             // the actor's new version (0 from the critic)
};

struct SaveStateRequest {
  bool weights_only = false;  // the model and its checksum, no optimizer or sampler state (a weight push)
};

// The weight-broadcast group of asynchronous rollouts (ppo.async.weight_sync: collective): the actor (rank 0 of the
// group) and every rank of the rollout worker (ranks 1 ..). The id names the group: "thread:..." for roles on
// threads of one process (a thread group), else the bytes of an NCCL unique id.
struct WeightGroupIdRequest {};
struct WeightGroupId {
  std::string id;
};
struct JoinWeightGroupRequest {
  std::string id;
  int64_t first_rank = 0;  // the group rank of this role's rank 0 (a role group's rank r joins as first_rank + r)
  int64_t size = 0;        // members of the group
};
// One weight push: the actor broadcasts its weights (at `version`, which must be its own) and their checksum; each
// receiver checks the checksum of what arrived. Both reply with the checksum of their weights.
struct BroadcastWeightsRequest {
  int64_t version = 0;
};
struct BroadcastWeightsReply {
  std::string checksum;
  int64_t version = 0;
};

// A trained role's whole state: what a checkpoint needs to rebuild it exactly.
struct RoleState {
  models::GptState model;
  std::string optimizer;                    // serialised optimizer state (empty: weights only, e.g. a weight push)
  std::optional<std::vector<int64_t>> ptx;  // the actor's PPO-ptx sampler state, when it has one
  int64_t weight_version = 0;
  std::string checksum{};  // weights_checksum(model) by the sender; the receiver verifies it (empty: not checked)
  bool empty() const { return model.tensors.empty(); }  // from a rank other than 0
};

// FNV-1a (64 bit) over the names, dtypes, shapes and bytes of the model's tensors, as 16 hex digits: what a weight
// push is checked against on arrival.
std::string weights_checksum(const models::GptState& model);

// ---- to and from messages (the request's MessageType is implied by the struct) ----
distributed::Message to_message(const GenerateRequest& r);
distributed::Message to_message(const GenerateReply& r);
distributed::Message to_message(const LogprobsRequest& r);
distributed::Message to_message(const LogprobsReply& r);
distributed::Message to_message(const ValuesRequest& r);
distributed::Message to_message(const ValuesReply& r);
distributed::Message to_message(const ScoreRequest& r);
distributed::Message to_message(const ScoreReply& r);
distributed::Message to_message(const TrainPolicyRequest& r);
distributed::Message to_message(const TrainValueRequest& r);
distributed::Message to_message(const TrainReply& r);
distributed::Message to_message(const SaveStateRequest& r);
distributed::Message to_message(const WeightGroupIdRequest& r);
distributed::Message to_message(const WeightGroupId& r);
distributed::Message to_message(const JoinWeightGroupRequest& r);
distributed::Message to_message(const BroadcastWeightsRequest& r);
distributed::Message to_message(const BroadcastWeightsReply& r);
// A kLoadState request when `as_request`, else the reply to kSaveState.
distributed::Message to_message(const RoleState& r, bool as_request);

// from_message<T>(m): the struct a message carries; ProtocolError naming the message type and the missing or
// misshapen field.
template <class T>
T from_message(const distributed::Message& m);

template <>
GenerateRequest from_message<GenerateRequest>(const distributed::Message& m);
template <>
SaveStateRequest from_message<SaveStateRequest>(const distributed::Message& m);
template <>
WeightGroupId from_message<WeightGroupId>(const distributed::Message& m);
template <>
JoinWeightGroupRequest from_message<JoinWeightGroupRequest>(const distributed::Message& m);
template <>
BroadcastWeightsRequest from_message<BroadcastWeightsRequest>(const distributed::Message& m);
template <>
BroadcastWeightsReply from_message<BroadcastWeightsReply>(const distributed::Message& m);
template <>
GenerateReply from_message<GenerateReply>(const distributed::Message& m);
template <>
LogprobsRequest from_message<LogprobsRequest>(const distributed::Message& m);
template <>
LogprobsReply from_message<LogprobsReply>(const distributed::Message& m);
template <>
ValuesRequest from_message<ValuesRequest>(const distributed::Message& m);
template <>
ValuesReply from_message<ValuesReply>(const distributed::Message& m);
template <>
ScoreRequest from_message<ScoreRequest>(const distributed::Message& m);
template <>
ScoreReply from_message<ScoreReply>(const distributed::Message& m);
template <>
TrainPolicyRequest from_message<TrainPolicyRequest>(const distributed::Message& m);
template <>
TrainValueRequest from_message<TrainValueRequest>(const distributed::Message& m);
template <>
TrainReply from_message<TrainReply>(const distributed::Message& m);
template <>
RoleState from_message<RoleState>(const distributed::Message& m);

// Seconds the role's handler took (every reply carries it); 0 when absent.
double reply_seconds(const distributed::Message& reply);
void set_reply_seconds(distributed::Message& reply, double seconds);

}  // namespace troupe::rlhf
