// Implementation of dashboard/log_access.h.
#include "dashboard/log_access.h"

#include <chrono>
#include <thread>

#include "core/errors.h"

namespace troupe::dashboard {

void with_log(const std::filesystem::path& file, const std::function<void(const core::RunLogReader&)>& body) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    try {
      const core::RunLogReader log(file);
      body(log);
      return;
    } catch (const IoError&) {
      if (attempt == kAttempts || !std::filesystem::exists(file)) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace troupe::dashboard
