// Implementation of the non-template parts of core/config_binder.h.
#include "core/config_binder.h"

#include <filesystem>

namespace troupe::core {

std::string resolve_config_path(const std::string& value, const std::string& file) {
  if (value.empty() || value.rfind("${", 0) == 0) return value;
  const std::filesystem::path p(value);
  if (p.is_absolute()) return value;
  const std::filesystem::path dir = std::filesystem::absolute(std::filesystem::path(file)).parent_path();
  return (dir / p).lexically_normal().string();
}

std::string resolve_override_path(const std::string& value) {
  if (value.empty() || value.rfind("${", 0) == 0) return value;
  const std::filesystem::path p(value);
  if (p.is_absolute()) return value;
  return std::filesystem::absolute(p).lexically_normal().string();
}

}  // namespace troupe::core
