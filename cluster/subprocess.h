// Running other programs from Troupe's front end: Slurm's commands (captured output, a deadline) and the runs of a
// local sweep (inherited terminal, stop signals forwarded). POSIX only; not a general process library.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/runtime.h"

namespace troupe::cluster {

struct CommandOptions {
  std::chrono::milliseconds timeout{30000};  // the child is killed (SIGKILL) and TimeoutError thrown after this
  std::filesystem::path cwd;                 // working directory; empty = ours
};

struct CommandResult {
  int exit_code = -1;  // exit status, or 128 + signal when killed by one
  std::string out;     // stdout
  std::string err;     // stderr
};

// find_on_path and current_executable live in core/runtime.h (the PPO launcher and pipelines use them too).
using core::current_executable;
using core::find_on_path;

// Runs argv (argv[0] an absolute path; no shell) with stdin from /dev/null, capturing stdout and stderr. Throws
// IoError when it cannot be started and TimeoutError (naming the command) when it outlives options.timeout.
CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options = {});

// Runs argv in the foreground with our stdin/stdout/stderr, in its own process group (so a terminal's Ctrl-C
// reaches only us) and with SIGTERM as its parent-death signal. The first SIGINT/SIGTERM/SIGUSR1 we receive
// (core/signals.h handlers, installed here) is forwarded to it once, so it checkpoints and stops. Returns its exit
// status, or 128 + signal.
int run_foreground(const std::vector<std::string>& argv);

// `text` as one bash word: unchanged when it is made of safe characters, else in single quotes ('it'\''s').
std::string shell_quote(const std::string& text);
// "a b 'c d'": argv as a shell would need it, for messages.
std::string join_command(const std::vector<std::string>& argv);

}  // namespace troupe::cluster
