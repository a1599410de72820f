// Implementation of distributed/library_versions.h.
#include "distributed/library_versions.h"

#include <mpi.h>
#include <zmq.h>

namespace troupe::distributed {

std::map<std::string, std::string> communication_library_versions() {
  char mpi_lib[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(mpi_lib, &len);  // callable before MPI_Init (MPI-3)
  std::string mpi(mpi_lib, static_cast<size_t>(len));
  if (auto comma = mpi.find(','); comma != std::string::npos) mpi = mpi.substr(0, comma);
  int version = 0, subversion = 0;
  MPI_Get_version(&version, &subversion);
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return {{"mpi", mpi},
          {"mpi_standard", std::to_string(version) + "." + std::to_string(subversion)},
          {"zeromq", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch)}};
}

}  // namespace troupe::distributed
