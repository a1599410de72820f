// The PPO roles as a type: RoleKind, their names (configs, endpoints, logs) and RoleMap, one value per role
// indexed by kind, so that a misspelt role is a compile error or a ConfigError naming the valid ones, never a
// silently created map entry. Torch-free.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace troupe::rlhf {

// kRollout: a sampler holding a copy of the policy, for asynchronous rollouts (ppo.async); started only then.
enum class RoleKind { kActor, kCritic, kReward, kReference, kRollout };

// Every role, in the order the controller starts them and checkpoints list them.
inline constexpr std::array<RoleKind, 5> kRoleKinds = {RoleKind::kActor, RoleKind::kCritic, RoleKind::kReward,
                                                       RoleKind::kReference, RoleKind::kRollout};

// "actor", "critic", "reward", "reference", "rollout".
const char* role_name(RoleKind kind);
// The kind named `name`; ConfigError listing the names otherwise.
RoleKind role_kind(std::string_view name);
// Whether `name` names a role.
bool is_role_name(std::string_view name);

// One T per role.
template <class T>
class RoleMap {
 public:
  T& operator[](RoleKind kind) { return values_[static_cast<size_t>(kind)]; }
  const T& operator[](RoleKind kind) const { return values_[static_cast<size_t>(kind)]; }

 private:
  std::array<T, kRoleKinds.size()> values_{};
};

}  // namespace troupe::rlhf
