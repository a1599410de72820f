// Cooperative stopping on signals: SIGINT (Ctrl-C), SIGTERM and SIGUSR1 (Slurm's
// warning before preemption) set a flag that long loops poll between steps, so they can
// checkpoint and exit cleanly. Not a general signal framework.
#pragma once

namespace troupe::core {

// Installs handlers for SIGINT, SIGTERM and SIGUSR1 (idempotent). A second SIGINT while
// a stop is pending restores the default action and re-raises: Ctrl-C twice kills.
void install_stop_handlers();

// Installs `handler` for `signal_number` with SA_RESTART and an empty mask: the one place that fills a struct
// sigaction (the stop handlers here, the fault-injection SIGUSR2 of distributed/transport.h). IoError on failure.
void install_handler(int signal_number, void (*handler)(int));

// True once any of the handled signals arrived.
bool stop_requested();
// The first signal received (0 if none).
int stop_signal();
// Clears the flag (tests, and loops that handled a SIGUSR1 checkpoint request).
void reset_stop_request();

}  // namespace troupe::core
