// Tests for data/packing.h: first-fit placement, hand-computed.
#include "data/packing.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace troupe::data {
namespace {

TEST(FirstFit, PlacesEachItemInTheFirstRowWithRoom) {
  // Capacity 6: 3 and 2 share row 0 (5 used), 4 opens row 1, 1 fills row 0's last position, 0 fits anywhere.
  const FirstFit fit = first_fit({3, 2, 4, 1, 0}, 6);
  ASSERT_EQ(fit.places.size(), 5u);
  const std::vector<std::pair<int64_t, int64_t>> want = {{0, 0}, {0, 3}, {1, 0}, {0, 5}, {0, 6}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(fit.places[i].row, want[i].first) << i;
    EXPECT_EQ(fit.places[i].offset, want[i].second) << i;
  }
  EXPECT_EQ(fit.row_lengths, (std::vector<int64_t>{6, 4}));
  EXPECT_TRUE(first_fit({}, 6).row_lengths.empty());
  EXPECT_THROW(first_fit({3, 7}, 6), ConfigError);  // item 1 is longer than a row
  EXPECT_THROW(first_fit({-1}, 6), ConfigError);
  EXPECT_THROW(first_fit({1}, 0), ConfigError);
}

}  // namespace
}  // namespace troupe::data
