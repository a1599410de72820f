// Implementation of rlhf/role_kind.h.
#include "rlhf/role_kind.h"

#include "core/errors.h"

namespace troupe::rlhf {

const char* role_name(RoleKind kind) {
  switch (kind) {
    case RoleKind::kActor: return "actor";
    case RoleKind::kCritic: return "critic";
    case RoleKind::kReward: return "reward";
    case RoleKind::kReference: return "reference";
    case RoleKind::kRollout: return "rollout";
  }
  return "?";
}

bool is_role_name(std::string_view name) {
  for (RoleKind k : kRoleKinds)
    if (name == role_name(k)) return true;
  return false;
}

RoleKind role_kind(std::string_view name) {
  for (RoleKind k : kRoleKinds)
    if (name == role_name(k)) return k;
  throw ConfigError("unknown role '" + std::string(name) + "': expected actor, critic, reward, reference or rollout");
}

}  // namespace troupe::rlhf
