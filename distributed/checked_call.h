// The one checking helper for MPI and ZeroMQ C calls: a failed call throws IoError naming
// the call site, the expression and the library's own message. Not a wrapper library.
#pragma once

namespace troupe::distributed::detail {

// Throws IoError "<file>:<line>: MPI call failed: <expr>: <MPI_Error_string>" unless rc == MPI_SUCCESS.
int check_mpi(int rc, const char* expr, const char* file, int line);
// ZeroMQ's C API signals failure with -1 (or NULL) and errno; throws with zmq_strerror(errno).
long check_zmq(long rc, const char* expr, const char* file, int line);
void* check_zmq_ptr(void* p, const char* expr, const char* file, int line);

}  // namespace troupe::distributed::detail

#define TROUPE_MPI(expr) ::troupe::distributed::detail::check_mpi((expr), #expr, __FILE__, __LINE__)
#define TROUPE_ZMQ(expr) ::troupe::distributed::detail::check_zmq((expr), #expr, __FILE__, __LINE__)
#define TROUPE_ZMQ_PTR(expr) ::troupe::distributed::detail::check_zmq_ptr((expr), #expr, __FILE__, __LINE__)
