// The Troupe exception hierarchy and checked-call helpers.
// Libraries throw these; only main() turns them into messages and exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace troupe {

// Base of every error Troupe throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config file, override or value is wrong. Message names file:line:col and the key.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Input data (a dataset line, a tokenizer file, a checkpoint) is malformed.
class DataError : public Error {
 public:
  using Error::Error;
};

// A file, HDF5, MPI or ZeroMQ operation failed.
class IoError : public Error {
 public:
  using Error::Error;
};

// A blocking operation passed its deadline (a dead or stuck peer).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A worker process (a role, a rank of a role's group) failed: it exited, is stopped, stopped beating or made no
// progress while it owed a reply. worker() names it as its launcher does ("role critic rank 0").
class WorkerFailure : public Error {
 public:
  WorkerFailure(const std::string& what, std::string worker, long pid = 0)
      : Error(what), worker_(std::move(worker)), pid_(pid) {}
  const std::string& worker() const { return worker_; }
  long pid() const { return pid_; }  // the failed process, when known (a stopped rank of an mpirun group), else 0

 private:
  std::string worker_;
  long pid_;
};

// A message on the wire is inconsistent with its header or protocol version.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// The user asked to stop (SIGINT/SIGTERM); carries the signal number.
class Interrupted : public Error {
 public:
  explicit Interrupted(int signal_number);
  int signal_number() const { return signal_number_; }

 private:
  int signal_number_;
};

// Exit code for an exception escaping main: 2 for config/data errors, 130 for SIGINT
// (128 + signal in general), 1 for everything else.
int exit_code_for(const std::exception& e);

namespace detail {
// Throws IoError("<file>:<line>: <what>"). Used by the checked-call macros.
[[noreturn]] void throw_io_error(const char* file, int line, const std::string& what);
}  // namespace detail

}  // namespace troupe

// Throws IoError naming the call site when a POSIX call returns -1 (errno describes why).
#define TROUPE_CHECK_POSIX(expr) ::troupe::detail::check_posix((expr), #expr, __FILE__, __LINE__)

namespace troupe::detail {
long check_posix(long ret, const char* expr, const char* file, int line);
}  // namespace troupe::detail
