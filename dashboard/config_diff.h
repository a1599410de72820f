// Config comparison for the dashboard: a resolved config YAML flattened to dotted keys, and the keys where two
// runs differ. Not a YAML merge or a typed comparison: values compare as their YAML text.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::dashboard {

// "a: {b: 1, c: [x, y]}" -> {"a.b": "1", "a.c": "[x, y]"}; a sequence holding mappings flattens by index
// ("stages[0].name"); an empty mapping is "{}". DataError naming `what` when the text is not YAML.
std::map<std::string, std::string> flatten_yaml(const std::string& yaml, const std::string& what);

struct ConfigDifference {
  std::string key;
  std::optional<std::string> a, b;  // absent when that config lacks the key
};

// The keys where the flattened configs differ, sorted, and how many are equal.
struct ConfigDiff {
  std::vector<ConfigDifference> differences;
  size_t equal = 0;
};
ConfigDiff diff_configs(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b);

}  // namespace troupe::dashboard
