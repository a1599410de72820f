// The metadata every run log of this process starts from: the commit the binary was built from, the host, the start
// time (now) and Troupe's version. Callers add what only they know (command line, seed, world size, more library
// versions). Torch-free.
#pragma once

#include "core/run_log.h"

namespace troupe::core {

RunMetadata this_process_metadata();

}  // namespace troupe::core
