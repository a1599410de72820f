// Downsampling of a metric series for plotting: min/max buckets that keep the first and last row and every bucket's
// extremes, so spikes survive at any zoom. Not LTTB (which can drop a one-row spike) and not averaging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace troupe::dashboard {

// Indices into a series of `values` (N rows) to plot with at most `max_points` points (>= 4), ascending. All N
// indices when N <= max_points. Otherwise the first and the last row, and for each of (max_points - 2) / 2 buckets
// of consecutive interior rows the row of its smallest and of its largest finite value (one index when they
// coincide; a bucket with no finite value keeps its first row, so gaps still show). Example: values
// [0, 5, 1, 9, 2, 3, 8, 4] with max_points 6 -> buckets {5, 1, 9} and {2, 3, 8} -> indices 0, 2, 3, 4, 6, 7.
std::vector<size_t> minmax_indices(const std::vector<double>& values, size_t max_points);

// The rows [begin, end) of `xs` (ascending, e.g. steps) whose x lies in [x0, x1], widened by one row on each side
// so a line runs to the plot's edges.
struct RowRange {
  size_t begin = 0, end = 0;
};
RowRange rows_between(const std::vector<double>& xs, double x0, double x1);

}  // namespace troupe::dashboard
