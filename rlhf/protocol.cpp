// Implementation of rlhf/protocol.h: every tensor and scalar name on the wire is written here and nowhere else.
#include "rlhf/protocol.h"

#include <torch/torch.h>

#include <cstdio>
#include <cstring>

#include "core/errors.h"

namespace troupe::rlhf {

using distributed::Message;
using distributed::MessageType;

namespace {

constexpr const char* kSeconds = "time_s";
constexpr const char* kStatePrefix = "state.";

Message typed(MessageType type) {
  Message m;
  m.type = type;
  return m;
}

// ProtocolError unless `t` has `dim` dimensions (and, for each non-negative entry of `sizes`, that size).
const at::Tensor& checked(const Message& m, const std::string& name, int64_t dim, std::vector<int64_t> sizes = {}) {
  const at::Tensor& t = m.tensor(name);
  bool ok = t.dim() == dim;
  for (size_t i = 0; ok && i < sizes.size(); ++i) ok = sizes[i] < 0 || t.size(static_cast<int64_t>(i)) == sizes[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < static_cast<size_t>(dim); ++i)
      want += (i ? ", " : "") + (i < sizes.size() && sizes[i] >= 0 ? std::to_string(sizes[i]) : std::string("?"));
    throw ProtocolError(distributed::to_string(m.type) + " message: tensor '" + name + "' has shape " +
                        c10::str(t.sizes()) + ", expected " + want + "]");
  }
  return t;
}

void add_batch(Message& m, const SequenceBatch& s) {
  m.tensors.emplace_back("sequences", s.sequences);
  m.tensors.emplace_back("attention_mask", s.attention_mask);
  m.tensors.emplace_back("response_mask", s.response_mask);
  m.scalars["prompt_length"] = static_cast<double>(s.prompt_length);
}

SequenceBatch read_batch(const Message& m) {
  SequenceBatch s;
  s.sequences = m.tensor("sequences");
  s.attention_mask = m.tensor("attention_mask");
  s.response_mask = m.tensor("response_mask");
  s.prompt_length = static_cast<int64_t>(m.scalar("prompt_length"));
  const bool ok = s.sequences.dim() == 2 && s.attention_mask.sizes().equals(s.sequences.sizes()) &&
                  s.response_mask.dim() == 2 && s.response_mask.size(0) == s.sequences.size(0) &&
                  s.prompt_length >= 1 && s.response_mask.size(1) == s.sequences.size(1) - s.prompt_length &&
                  s.response_mask.size(1) >= 1 && s.sequences.scalar_type() == torch::kLong;
  if (!ok) {
    throw ProtocolError(distributed::to_string(m.type) +
                        " message: inconsistent rollout tensors (sequences, attention_mask, response_mask, "
                        "prompt_length)");
  }
  return s;
}

// A [B, T] per-token tensor matching the batch.
const at::Tensor& per_token(const Message& m, const std::string& name, const SequenceBatch& s) {
  return checked(m, name, 2, {s.size(), s.response_length()});
}

at::Tensor bytes_tensor(const std::string& blob) {
  at::Tensor bytes = torch::empty({static_cast<int64_t>(blob.size())}, torch::kUInt8);
  if (!blob.empty()) std::memcpy(bytes.data_ptr(), blob.data(), blob.size());
  return bytes;
}

std::string bytes_of(const at::Tensor& t) {
  const at::Tensor bytes = t.to(torch::kCPU).contiguous();
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()));
}

std::map<std::string, double> metrics_of(const Message& m) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : m.scalars)
    if (k != kSeconds) out[k] = v;
  return out;
}

}  // namespace

// ---- generate ----

Message to_message(const GenerateRequest& r) {
  Message m = typed(MessageType::kGenerate);
  m.tensors = {{"prompt_ids", r.prompt_ids}, {"prompt_mask", r.prompt_mask}};
  m.scalars["seed"] = static_cast<double>(r.seed);
  m.scalars["greedy"] = r.greedy ? 1.0 : 0.0;
  return m;
}

template <>
GenerateRequest from_message<GenerateRequest>(const Message& m) {
  GenerateRequest r;
  r.prompt_ids = checked(m, "prompt_ids", 2);
  r.prompt_mask = checked(m, "prompt_mask", 2, {r.prompt_ids.size(0), r.prompt_ids.size(1)});
  r.seed = static_cast<uint64_t>(m.scalar("seed"));
  r.greedy = m.scalar("greedy") != 0.0;
  return r;
}

Message to_message(const GenerateReply& r) {
  Message m = typed(MessageType::kReply);
  m.weight_version = r.weight_version;
  if (!r.rollout.sequences.defined()) return m;  // a rank that did not sample
  add_batch(m, r.rollout);
  m.tensors.emplace_back("eos", r.rollout.eos);
  m.tensors.emplace_back("sample_logprobs", r.rollout.sample_logprobs);
  return m;
}

template <>
GenerateReply from_message<GenerateReply>(const Message& m) {
  GenerateReply r;
  r.weight_version = m.weight_version;
  static_cast<SequenceBatch&>(r.rollout) = read_batch(m);
  r.rollout.eos = checked(m, "eos", 1, {r.rollout.size()});
  r.rollout.sample_logprobs = per_token(m, "sample_logprobs", r.rollout);
  return r;
}

// ---- log-probs, values, scores ----

Message to_message(const LogprobsRequest& r) {
  Message m = typed(MessageType::kLogprobs);
  add_batch(m, r.batch);
  return m;
}

template <>
LogprobsRequest from_message<LogprobsRequest>(const Message& m) {
  return LogprobsRequest{read_batch(m)};
}

Message to_message(const LogprobsReply& r) {
  Message m = typed(MessageType::kReply);
  m.weight_version = r.weight_version;
  m.tensors = {{"logprobs", r.logprobs}};
  return m;
}

template <>
LogprobsReply from_message<LogprobsReply>(const Message& m) {
  return LogprobsReply{checked(m, "logprobs", 2), m.weight_version};
}

Message to_message(const ValuesRequest& r) {
  Message m = typed(MessageType::kValues);
  add_batch(m, r.batch);
  return m;
}

template <>
ValuesRequest from_message<ValuesRequest>(const Message& m) {
  return ValuesRequest{read_batch(m)};
}

Message to_message(const ValuesReply& r) {
  Message m = typed(MessageType::kReply);
  m.tensors = {{"values", r.values}};
  return m;
}

template <>
ValuesReply from_message<ValuesReply>(const Message& m) {
  return ValuesReply{checked(m, "values", 2)};
}

Message to_message(const ScoreRequest& r) {
  Message m = typed(MessageType::kScore);
  add_batch(m, r.batch);
  m.tensors.emplace_back("eos", r.eos);
  return m;
}

template <>
ScoreRequest from_message<ScoreRequest>(const Message& m) {
  ScoreRequest r;
  r.batch = read_batch(m);
  r.eos = checked(m, "eos", 1, {r.batch.size()});
  return r;
}

Message to_message(const ScoreReply& r) {
  Message m = typed(MessageType::kReply);
  m.tensors = {{"scores", r.scores}};
  return m;
}

template <>
ScoreReply from_message<ScoreReply>(const Message& m) {
  return ScoreReply{checked(m, "scores", 1)};
}

// ---- training ----

Message to_message(const TrainPolicyRequest& r) {
  Message m = typed(MessageType::kTrainPolicy);
  m.step = r.iteration;
  m.weight_version = r.weight_version;
  add_batch(m, r.batch);
  m.tensors.emplace_back("old_logprobs", r.old_logprobs);
  m.tensors.emplace_back("ref_logprobs", r.ref_logprobs);
  m.tensors.emplace_back("advantages", r.advantages);
  if (r.sample_ids.defined()) m.tensors.emplace_back("sample_ids", r.sample_ids);
  if (r.behaviour_logprobs.defined()) m.tensors.emplace_back("behaviour_logprobs", r.behaviour_logprobs);
  m.scalars["is_cap"] = r.is_cap;
  m.scalars["kl_coef"] = r.kl_coef;
  return m;
}

template <>
TrainPolicyRequest from_message<TrainPolicyRequest>(const Message& m) {
  TrainPolicyRequest r;
  r.batch = read_batch(m);
  r.old_logprobs = per_token(m, "old_logprobs", r.batch);
  r.ref_logprobs = per_token(m, "ref_logprobs", r.batch);
  r.advantages = per_token(m, "advantages", r.batch);
  for (const auto& [name, t] : m.tensors) {
    if (name == "sample_ids") r.sample_ids = checked(m, "sample_ids", 1, {r.batch.size()});
    if (name == "behaviour_logprobs") r.behaviour_logprobs = per_token(m, "behaviour_logprobs", r.batch);
  }
  r.kl_coef = m.scalar("kl_coef");
  r.is_cap = m.scalar("is_cap");
  r.iteration = m.step;
  r.weight_version = m.weight_version;
  return r;
}

Message to_message(const TrainValueRequest& r) {
  Message m = typed(MessageType::kTrainValue);
  m.step = r.iteration;
  add_batch(m, r.batch);
  m.tensors.emplace_back("old_values", r.old_values);
  m.tensors.emplace_back("returns", r.returns);
  return m;
}

template <>
TrainValueRequest from_message<TrainValueRequest>(const Message& m) {
  TrainValueRequest r;
  r.batch = read_batch(m);
  r.old_values = per_token(m, "old_values", r.batch);
  r.returns = per_token(m, "returns", r.batch);
  r.iteration = m.step;
  return r;
}

Message to_message(const TrainReply& r) {
  Message m = typed(MessageType::kReply);
  m.weight_version = r.weight_version;
  m.scalars.insert(r.metrics.begin(), r.metrics.end());
  return m;
}

template <>
TrainReply from_message<TrainReply>(const Message& m) {
  return TrainReply{metrics_of(m), m.weight_version};
}

// ---- state ----

Message to_message(const SaveStateRequest& r) {
  Message m = typed(MessageType::kSaveState);
  m.scalars["weights_only"] = r.weights_only ? 1.0 : 0.0;
  return m;
}

template <>
SaveStateRequest from_message<SaveStateRequest>(const Message& m) {
  SaveStateRequest r;
  r.weights_only = m.scalar("weights_only") != 0.0;
  return r;
}

// ---- the weight-broadcast group ----

Message to_message(const WeightGroupIdRequest&) { return typed(MessageType::kWeightGroupId); }

Message to_message(const WeightGroupId& r) {
  Message m = typed(MessageType::kReply);
  m.tensors.emplace_back("id", bytes_tensor(r.id));
  return m;
}

template <>
WeightGroupId from_message<WeightGroupId>(const Message& m) {
  return WeightGroupId{bytes_of(checked(m, "id", 1))};
}

Message to_message(const JoinWeightGroupRequest& r) {
  Message m = typed(MessageType::kJoinWeightGroup);
  m.tensors.emplace_back("id", bytes_tensor(r.id));
  m.scalars["first_rank"] = static_cast<double>(r.first_rank);
  m.scalars["size"] = static_cast<double>(r.size);
  return m;
}

template <>
JoinWeightGroupRequest from_message<JoinWeightGroupRequest>(const Message& m) {
  JoinWeightGroupRequest r;
  r.id = bytes_of(checked(m, "id", 1));
  r.first_rank = static_cast<int64_t>(m.scalar("first_rank"));
  r.size = static_cast<int64_t>(m.scalar("size"));
  return r;
}

Message to_message(const BroadcastWeightsRequest& r) {
  Message m = typed(MessageType::kBroadcastWeights);
  m.weight_version = r.version;
  return m;
}

template <>
BroadcastWeightsRequest from_message<BroadcastWeightsRequest>(const Message& m) {
  return BroadcastWeightsRequest{m.weight_version};
}

Message to_message(const BroadcastWeightsReply& r) {
  Message m = typed(MessageType::kReply);
  m.weight_version = r.version;
  m.strings["checksum"] = r.checksum;
  return m;
}

template <>
BroadcastWeightsReply from_message<BroadcastWeightsReply>(const Message& m) {
  return BroadcastWeightsReply{m.string("checksum"), m.weight_version};
}

Message to_message(const RoleState& r, bool as_request) {
  Message m = typed(as_request ? MessageType::kLoadState : MessageType::kReply);
  m.weight_version = r.weight_version;
  if (r.empty()) return m;
  for (const auto& [name, t] : r.model.tensors) m.tensors.emplace_back(kStatePrefix + name, t);
  if (!r.optimizer.empty()) m.tensors.emplace_back("optimizer", bytes_tensor(r.optimizer));
  if (!r.checksum.empty()) m.strings["checksum"] = r.checksum;
  if (r.ptx) m.tensors.emplace_back("ptx_state", torch::tensor(*r.ptx, torch::kLong));
  m.strings["model_config"] = r.model.config_json;
  m.scalars["value_head"] = r.model.value_head ? 1 : 0;
  m.scalars["reward_head"] = r.model.reward_head ? 1 : 0;
  m.scalars["lora_alpha"] = r.model.lora_alpha;
  return m;
}

template <>
RoleState from_message<RoleState>(const Message& m) {
  RoleState r;
  r.weight_version = m.weight_version;
  for (const auto& [name, t] : m.tensors) {
    if (name.rfind(kStatePrefix, 0) == 0) r.model.tensors[name.substr(std::strlen(kStatePrefix))] = t;
  }
  if (r.model.tensors.empty()) return r;
  for (const auto& [name, t] : m.tensors) {
    if (name == "optimizer") r.optimizer = bytes_of(t);
    if (name != "ptx_state") continue;
    const at::Tensor v = t.to(torch::kCPU).to(torch::kLong).contiguous();
    r.ptx = std::vector<int64_t>(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + v.numel());
  }
  r.model.config_json = m.string("model_config");
  if (const auto sum = m.strings.find("checksum"); sum != m.strings.end()) r.checksum = sum->second;
  r.model.value_head = m.scalar("value_head") != 0;
  r.model.reward_head = m.scalar("reward_head") != 0;
  r.model.lora_alpha = m.scalar("lora_alpha");
  return r;
}

std::string weights_checksum(const models::GptState& model) {
  uint64_t h = 1469598103934665603ULL;
  const auto mix = [&h](const void* data, size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  };
  for (const auto& [name, t] : model.tensors) {  // std::map: sorted by name
    mix(name.data(), name.size());
    const at::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const auto dtype = static_cast<int>(c.scalar_type());
    mix(&dtype, sizeof dtype);
    for (int64_t d : c.sizes()) mix(&d, sizeof d);
    mix(c.data_ptr(), c.nbytes());
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

double reply_seconds(const Message& reply) {
  const auto it = reply.scalars.find(kSeconds);
  return it == reply.scalars.end() ? 0.0 : it->second;
}

void set_reply_seconds(Message& reply, double seconds) { reply.scalars[kSeconds] = seconds; }

}  // namespace troupe::rlhf
