// Fuzz target: YAML config text -> ConfigNode (parse_config_yaml), then one dotted override applied to it. Bad
// YAML must be a ConfigError naming the position; anchors and aliases must not blow up memory (the review's
// "alias bomb").
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config_tree.h"
#include "core/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    troupe::core::ConfigNode root = troupe::core::parse_config_yaml(text, "fuzz.yaml");
    troupe::core::apply_override(root, "a.b=[1, {c: 2}]");
  } catch (const troupe::Error&) {
  }
  return 0;
}
