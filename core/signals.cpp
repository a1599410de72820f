// Implementation of core/signals.h: async-signal-safe flag setting only.
#include "core/signals.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "core/errors.h"

namespace troupe::core {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig) && sig == SIGINT) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

}  // namespace

void install_handler(int signal_number, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(signal_number, &sa, nullptr) != 0)
    throw IoError("sigaction(" + std::to_string(signal_number) + ") failed: " + std::strerror(errno));
}

void install_stop_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) install_handler(sig, on_stop_signal);
}

bool stop_requested() { return g_signal.load() != 0; }
int stop_signal() { return g_signal.load(); }
void reset_stop_request() { g_signal.store(0); }

}  // namespace troupe::core
