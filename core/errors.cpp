// Implementation of the error helpers declared in core/errors.h.
#include "core/errors.h"

#include <cerrno>
#include <cstring>

namespace troupe {

Interrupted::Interrupted(int signal_number)
    : Error("interrupted by signal " + std::to_string(signal_number) + " (" + std::string(strsignal(signal_number)) +
            ")"),
      signal_number_(signal_number) {}

int exit_code_for(const std::exception& e) {
  if (dynamic_cast<const ConfigError*>(&e) || dynamic_cast<const DataError*>(&e)) return 2;
  if (auto* i = dynamic_cast<const Interrupted*>(&e)) return 128 + i->signal_number();
  return 1;
}

namespace detail {

void throw_io_error(const char* file, int line, const std::string& what) {
  throw IoError(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

long check_posix(long ret, const char* expr, const char* file, int line) {
  if (ret == -1) {
    int err = errno;
    throw_io_error(file, line, std::string(expr) + " failed: " + std::strerror(err));
  }
  return ret;
}

}  // namespace detail
}  // namespace troupe
