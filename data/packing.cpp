// Implementation of data/packing.h.
#include "data/packing.h"

#include <string>

#include "core/errors.h"

namespace troupe::data {

FirstFit first_fit(const std::vector<int64_t>& needs, int64_t capacity) {
  if (capacity < 1) throw ConfigError("packing: capacity must be >= 1, got " + std::to_string(capacity));
  FirstFit out;
  out.places.reserve(needs.size());
  for (size_t i = 0; i < needs.size(); ++i) {
    const int64_t need = needs[i];
    if (need < 0 || need > capacity) {
      throw ConfigError("packing: item " + std::to_string(i) + " needs " + std::to_string(need) +
                        " positions; expected 0 to the capacity " + std::to_string(capacity));
    }
    size_t row = 0;
    while (row < out.row_lengths.size() && out.row_lengths[row] + need > capacity) ++row;
    if (row == out.row_lengths.size()) out.row_lengths.push_back(0);
    out.places.push_back({static_cast<int64_t>(row), out.row_lengths[row]});
    out.row_lengths[row] += need;
  }
  return out;
}

}  // namespace troupe::data
