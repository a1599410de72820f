// Implementation of core/device_spec.h.
#include "core/device_spec.h"

namespace troupe::core {

int cuda_index_of(const std::string& spec) {
  if (spec == "cuda") return -1;
  if (spec.rfind("cuda:", 0) != 0 || spec.size() == 5 || spec.size() > 9) return -2;
  int n = 0;
  for (size_t i = 5; i < spec.size(); ++i) {
    if (spec[i] < '0' || spec[i] > '9') return -2;
    n = n * 10 + (spec[i] - '0');
  }
  return n;
}

bool valid_device_spec(const std::string& spec) { return spec == "auto" || spec == "cpu" || cuda_index_of(spec) >= -1; }

}  // namespace troupe::core
