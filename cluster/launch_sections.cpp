// Implementation of cluster/launch_sections.h.
#include "cluster/launch_sections.h"

namespace troupe::cluster {

LaunchSections take_launch_sections(core::ConfigNode& tree) {
  LaunchSections out;
  if (!tree.is_map()) return out;
  if (const core::ConfigNode* node = tree.find("cluster")) {
    out.has_cluster = true;
    core::ConfigBinder binder(node, "cluster", out.cluster_origins);
    out.cluster.visit(binder);
    binder.reject_unknown_keys();
    core::ConfigValidator validator(out.cluster_origins, "cluster");
    out.cluster.validate(validator);
    tree.erase("cluster");
  }
  if (const core::ConfigNode* node = tree.find("sweep")) {
    if (!node->is_null()) {
      out.has_sweep = true;
      out.sweep = expand_sweep(*node);
    }
    tree.erase("sweep");
  }
  return out;
}

std::string emit_cluster_section(const LaunchSections& sections, bool origins, bool docs) {
  core::ConfigEmitter emitter(&sections.cluster_origins, {origins, docs}, "cluster", 2);
  const_cast<ClusterSection&>(sections.cluster).visit(emitter);
  return "cluster:\n" + emitter.str();
}

}  // namespace troupe::cluster
