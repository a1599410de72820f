// The four PPO worker roles. Each owns its model and answers requests with `Message handle(const Message&)`;
// a separate loop (distributed::serve) does receive -> handle -> reply, so the same role runs on a thread over
// inproc:// or in its own `troupe worker` process over ipc:// / tcp://.
//
//   actor      kGenerate (prompts -> sequences, per-token sampling log-probs), kLogprobs, kTrainPolicy (PPO
//              epochs x minibatches; the weight version goes up by one), kSaveState / kLoadState
//   critic     kValues, kTrainValue, kSaveState / kLoadState
//   reward     kScore: a reward-model checkpoint (optionally normalised) or a programmatic reward function
//   reference  kLogprobs of the frozen starting policy
//
// Tensors on the wire (B rollouts, P prompt positions, T response positions; sequences are the left-padded
// prompt followed by the right-padded response):
//   prompt_ids [B, P] int64, prompt_mask [B, P] int64          (kGenerate request)
//   sequences [B, P+T] int64, attention_mask [B, P+T] int64, response_mask [B, T] float32, eos [B] float32
//   logprobs / values / old_logprobs / ref_logprobs / advantages / returns / old_values [B, T] float32
//   scores [B] float32
// Every reply carries the role's time in the handler (scalar "time_s"). Not the schedule: rlhf/controller.h.
#pragma once

#include <memory>
#include <string>

#include "distributed/communicator.h"
#include "distributed/message.h"
#include "rlhf/ppo_config.h"
#include "rlhf/role_kind.h"

namespace troupe::rlhf {

class Role {
 public:
  explicit Role(c10::Device device = c10::kCPU) : device_(device) {}
  virtual ~Role() = default;
  virtual std::string name() const = 0;
  // Answers one request; throws on a bad request (serve() turns it into a kError reply). The request's tensors
  // are moved to the role's device first; the reply's travel back through host memory (distributed::encode).
  distributed::Message handle(const distributed::Message& request);
  // Where the role's model computes (runtime.device, resolved by the process's local rank).
  const c10::Device& device() const { return device_; }

 protected:
  virtual distributed::Message dispatch(const distributed::Message& request) = 0;
  const c10::Device device_;
};

// "actor" | "critic" | "reward" | "reference"; ConfigError for any other name. Builds the model on the CPU (seeded
// from config.seed and the role name, so every placement builds the same weights), then moves it to
// config.runtime.device resolved for this process's local rank (a programmatic reward always runs on the CPU). `group`
// (kept by reference; null = one rank) is the role's data-parallel group: every rank gets every request
// (distributed/group_relay.h), takes its share of the rows and all-reduces gradients, so N ranks compute what one would
// (up to summation order). Rollouts are sampled by rank 0 alone; the reward role scores on every rank.
std::unique_ptr<Role> make_role(RoleKind kind, const PpoConfig& config, distributed::Communicator* group = nullptr);
// As above, by name (a worker's --role); ConfigError for an unknown name.
std::unique_ptr<Role> make_role(const std::string& name, const PpoConfig& config,
                                distributed::Communicator* group = nullptr);

// The role names, in the order the controller starts them.
const std::vector<std::string>& role_names();

// The roles a run starts, in that order: actor, critic (unless the advantage estimator needs none: GRPO, RLOO,
// REINFORCE++, ReMax), reward, reference, and rollout (only with ppo.async.enabled).
std::vector<RoleKind> active_roles(const PpoConfig& config);
std::vector<std::string> active_role_names(const PpoConfig& config);

}  // namespace troupe::rlhf
