// Implementation of distributed/checked_call.h.
#include "distributed/checked_call.h"

#include <mpi.h>
#include <zmq.h>

#include <cerrno>
#include <string>

#include "core/errors.h"

namespace troupe::distributed::detail {

int check_mpi(int rc, const char* expr, const char* file, int line) {
  if (rc == MPI_SUCCESS) return rc;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  const std::string message =
      len > 0 ? std::string(text, static_cast<size_t>(len)) : "MPI error code " + std::to_string(rc);
  troupe::detail::throw_io_error(file, line, std::string("MPI call failed: ") + expr + ": " + message);
}

long check_zmq(long rc, const char* expr, const char* file, int line) {
  if (rc != -1) return rc;
  const int err = zmq_errno();
  troupe::detail::throw_io_error(file, line, std::string("ZeroMQ call failed: ") + expr + ": " + zmq_strerror(err));
}

void* check_zmq_ptr(void* p, const char* expr, const char* file, int line) {
  if (p) return p;
  const int err = zmq_errno();
  troupe::detail::throw_io_error(file, line, std::string("ZeroMQ call failed: ") + expr + ": " + zmq_strerror(err));
}

}  // namespace troupe::distributed::detail
