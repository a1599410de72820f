// Implementation of dashboard/downsample.h.
#include "dashboard/downsample.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace troupe::dashboard {
namespace {

// Appends the indices of the smallest and largest finite values among rows [begin, end), in row order.
void bucket_extremes(const std::vector<double>& values, size_t begin, size_t end, std::vector<size_t>& out) {
  size_t lo = end, hi = end;
  for (size_t i = begin; i < end; ++i) {
    if (!std::isfinite(values[i])) continue;
    if (lo == end || values[i] < values[lo]) lo = i;
    if (hi == end || values[i] > values[hi]) hi = i;
  }
  if (lo == end) {  // no finite value: keep one row so the gap is drawn
    out.push_back(begin);
    return;
  }
  out.push_back(std::min(lo, hi));
  if (hi != lo) out.push_back(std::max(lo, hi));
}

}  // namespace

std::vector<size_t> minmax_indices(const std::vector<double>& values, size_t max_points) {
  if (max_points < 4) throw DataError("downsampling needs at least 4 points, got " + std::to_string(max_points));
  const size_t n = values.size();
  std::vector<size_t> out;
  if (n <= max_points) {
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  const size_t buckets = (max_points - 2) / 2;
  const size_t interior = n - 2;  // rows 1 .. n-2
  out.reserve(max_points);
  out.push_back(0);
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = 1 + interior * b / buckets, end = 1 + interior * (b + 1) / buckets;
    if (begin < end) bucket_extremes(values, begin, end, out);
  }
  out.push_back(n - 1);
  return out;
}

RowRange rows_between(const std::vector<double>& xs, double x0, double x1) {
  auto first = std::lower_bound(xs.begin(), xs.end(), x0);
  auto last = std::upper_bound(xs.begin(), xs.end(), x1);
  RowRange r{static_cast<size_t>(first - xs.begin()), static_cast<size_t>(last - xs.begin())};
  if (r.begin > 0) --r.begin;
  if (r.end < xs.size()) ++r.end;
  return r;
}

}  // namespace troupe::dashboard
