// Tests of dashboard/downsample.h: the worked example, and on random series that the extremes and both ends
// survive, every kept row is a real row, and the count stays within the budget.
#include "dashboard/downsample.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/errors.h"

namespace troupe::dashboard {
namespace {

TEST(Downsample, WorkedExample) {
  const std::vector<double> v{0, 5, 1, 9, 2, 3, 8, 4};
  // Buckets (6 - 2) / 2 = 2 of the interior rows 1..6: {5, 1, 9} -> rows 2 (min) and 3 (max); {2, 3, 8} -> 4, 6.
  EXPECT_EQ(minmax_indices(v, 6), (std::vector<size_t>{0, 2, 3, 4, 6, 7}));
}

TEST(Downsample, ShortSeriesIsKeptWhole) {
  EXPECT_EQ(minmax_indices({3, 1, 2}, 4), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(minmax_indices({}, 4).empty());
  EXPECT_THROW(minmax_indices({1, 2}, 3), DataError);
}

TEST(Downsample, KeepsExtremesEndsAndBudgetOnRandomSeries) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise;
  for (size_t n : {5000u, 100000u, 2001u}) {
    std::vector<double> v(n);
    for (auto& x : v) x = noise(rng);
    v[n / 3] = 50;   // a one-row spike
    v[n / 2] = -50;  // and a dip
    const auto keep = minmax_indices(v, 2000);
    ASSERT_LE(keep.size(), 2000u);
    EXPECT_EQ(keep.front(), 0u);
    EXPECT_EQ(keep.back(), n - 1);
    EXPECT_TRUE(std::is_sorted(keep.begin(), keep.end()));
    EXPECT_EQ(std::adjacent_find(keep.begin(), keep.end()), keep.end());  // no row twice
    EXPECT_NE(std::find(keep.begin(), keep.end(), n / 3), keep.end());
    EXPECT_NE(std::find(keep.begin(), keep.end(), n / 2), keep.end());
    // Every bucket's extremes: the kept rows' min and max equal the whole series'.
    double lo = 1e9, hi = -1e9;
    for (size_t i : keep) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    EXPECT_EQ(lo, -50);
    EXPECT_EQ(hi, 50);
  }
}

TEST(Downsample, NonFiniteValuesDoNotWinABucket) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> v{1, nan, 2, nan, nan, 7, 0, 3};
  // Buckets of rows 1..6 with max_points 6: {nan, 2, nan} -> row 2 only; {nan, 7, 0} -> rows 5 (max) and 6 (min).
  EXPECT_EQ(minmax_indices(v, 6), (std::vector<size_t>{0, 2, 5, 6, 7}));
  std::vector<double> gap{1, nan, nan, nan, nan, nan, nan, 3};
  EXPECT_EQ(minmax_indices(gap, 6), (std::vector<size_t>{0, 1, 4, 7}));  // all-NaN buckets keep their first row
}

TEST(Downsample, RowsBetweenWidenByOneRow) {
  const std::vector<double> xs{0, 10, 20, 30, 40, 50};
  const RowRange r = rows_between(xs, 15, 35);  // rows 2, 3 inside; rows 1 and 4 reach the edges
  EXPECT_EQ(r.begin, 1u);
  EXPECT_EQ(r.end, 5u);
  const RowRange all = rows_between(xs, -1, 100);
  EXPECT_EQ(all.begin, 0u);
  EXPECT_EQ(all.end, 6u);
  const RowRange none = rows_between(xs, 100, 200);
  EXPECT_EQ(none.begin, 5u);
  EXPECT_EQ(none.end, 6u);
}

}  // namespace
}  // namespace troupe::dashboard
