// Torch seeding for core/seeding.h. The seed derivation itself is constexpr in the header;
// this file exists only so the header needs no torch include.
#include "core/seeding.h"

#include <torch/torch.h>

namespace troupe::core {

void seed_torch(uint64_t seed) { torch::manual_seed(seed); }

}  // namespace troupe::core
