// Parsing comma-separated token ids given on the command line (`tokenizer decode 15496,11`, `--prompt-ids`).
#pragma once

#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"

namespace troupe::cli {

// "15496,11,995" -> {15496, 11, 995}. ConfigError "<what>: expected comma-separated integers, got '<item>'" for an
// item that is not an integer of type Int, and "<what>: empty list" when there is none.
template <class Int>
std::vector<Int> parse_id_list(const std::string& text, const std::string& what) {
  std::vector<Int> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long long value = std::stoll(item, &used);
      if (used != item.size() || value < std::numeric_limits<Int>::min() || value > std::numeric_limits<Int>::max()) {
        throw std::invalid_argument(item);
      }
      ids.push_back(static_cast<Int>(value));
    } catch (const std::exception&) {
      throw ConfigError(what + ": expected comma-separated integers, got '" + item + "'");
    }
  }
  if (ids.empty()) throw ConfigError(what + ": empty list");
  return ids;
}

}  // namespace troupe::cli
