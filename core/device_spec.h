// The spelling of a device choice (`runtime.device`, `--device`): auto | cpu | cuda | cuda:N. Torch-free, so
// config validation and the CLI can check it without the torch headers; resolving it to a torch::Device against
// the visible GPUs is core/device.h.
#pragma once

#include <string>

namespace troupe::core {

// True when `spec` is one of auto, cpu, cuda, cuda:N (N a non-negative integer of at most 4 digits).
bool valid_device_spec(const std::string& spec);

// N of "cuda:N"; -1 for "cuda"; -2 for anything else.
int cuda_index_of(const std::string& spec);

// What valid_device_spec accepts, for messages: "one of auto, cpu, cuda, cuda:N".
inline const char* device_spec_expected() { return "one of auto, cpu, cuda, cuda:N"; }

}  // namespace troupe::core
