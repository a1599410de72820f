// First-fit packing of variable-length items into rows of a fixed number of positions: the placement that SFT
// batches (data/text_datasets.h, pack_sft) and RL forward passes (rlhf/rollout.h, response_logprobs_packed) share.
// Torch-free.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::data {

struct FirstFit {
  struct Place {
    int64_t row = 0, offset = 0;  // item i occupies positions [offset, offset + needs[i]) of row `row`
  };
  std::vector<Place> places;         // one per item, in item order
  std::vector<int64_t> row_lengths;  // positions used in each row
};

// Items of needs[i] >= 0 positions, each placed in order into the first row with room for it (a new row when none
// has). Example (capacity 6, needs {3, 2, 4, 1}): rows {0 at 0, 0 at 3, 1 at 0, 0 at 5}, row_lengths {6, 4}.
// ConfigError for a capacity below 1, a negative need, or an item that needs more than the capacity (naming its
// index).
FirstFit first_fit(const std::vector<int64_t>& needs, int64_t capacity);

}  // namespace troupe::data
