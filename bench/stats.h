// Statistics the benchmarks report, shared by every `troupe bench` command and `troupe tokenizer bench`.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace troupe::bench {

// The median of `v` (the mean of the two middle values for an even count). Throws for an empty vector.
inline double median(std::vector<double> v) {
  if (v.empty()) throw std::invalid_argument("median of no values");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace troupe::bench
