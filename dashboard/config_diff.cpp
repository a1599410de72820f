// Implementation of dashboard/config_diff.h.
#include "dashboard/config_diff.h"

#include <yaml-cpp/yaml.h>

#include "core/errors.h"

namespace troupe::dashboard {
namespace {

bool holds_mappings(const YAML::Node& seq) {
  for (const auto& item : seq)
    if (item.IsMap()) return true;
  return false;
}

std::string flow_text(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

void flatten(const YAML::Node& node, const std::string& key, std::map<std::string, std::string>& out) {
  if (node.IsMap() && node.size() > 0) {
    for (const auto& kv : node) {
      const std::string k = kv.first.as<std::string>();
      flatten(kv.second, key.empty() ? k : key + "." + k, out);
    }
  } else if (node.IsSequence() && holds_mappings(node)) {
    for (size_t i = 0; i < node.size(); ++i) flatten(node[i], key + "[" + std::to_string(i) + "]", out);
  } else if (node.IsScalar()) {
    out[key] = node.Scalar();
  } else if (node.IsNull()) {
    out[key] = "null";
  } else {
    out[key] = flow_text(node);
  }
}

}  // namespace

std::map<std::string, std::string> flatten_yaml(const std::string& yaml, const std::string& what) {
  std::map<std::string, std::string> out;
  try {
    const YAML::Node root = YAML::Load(yaml);
    if (!root.IsMap() && !root.IsNull()) throw DataError(what + ": the config is not a YAML mapping");
    flatten(root, "", out);
  } catch (const YAML::Exception& e) {
    throw DataError(what + ": the config is not valid YAML: " + e.what());
  }
  out.erase("");
  return out;
}

ConfigDiff diff_configs(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  ConfigDiff d;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      d.differences.push_back({ia->first, ia->second, std::nullopt});
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      d.differences.push_back({ib->first, std::nullopt, ib->second});
      ++ib;
    } else {
      if (ia->second == ib->second) {
        ++d.equal;
      } else {
        d.differences.push_back({ia->first, ia->second, ib->second});
      }
      ++ia;
      ++ib;
    }
  }
  return d;
}

}  // namespace troupe::dashboard
