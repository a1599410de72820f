// Versions of the communication libraries Troupe is linked against (for `troupe info` and
// the run log's metadata). Needs no MPI_Init.
#pragma once

#include <map>
#include <string>

namespace troupe::distributed {

// {"mpi": "Open MPI v4.1.4, ...", "mpi_standard": "3.1", "zeromq": "4.3.4"}
std::map<std::string, std::string> communication_library_versions();

}  // namespace troupe::distributed
