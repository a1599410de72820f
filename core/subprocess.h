// The one way Troupe starts another program: PPO workers, pipeline stages, Slurm commands, local sweep runs, the
// report's plotting script, benchmark peers and the tests' child processes all go through Subprocess. POSIX
// fork + exec with everything the child needs prepared before the fork (the child runs only async-signal-safe
// calls), an exec failure reported back to the parent as an IoError rather than a silent exit 127, and deadlines on
// every wait.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

// Where one of the child's output streams goes.
enum class OutputMode {
  kInherit,  // our own stdout / stderr
  kNull,     // /dev/null
  kFile,     // `file`, truncated
  kAppend,   // `file`, appended to (a log that several starts share)
  kCapture,  // a pipe read by the parent: Subprocess::out() / err()
  kStdout,   // stderr only: wherever stdout goes
};

struct SubprocessOptions {
  std::vector<std::string> argv;           // argv[0]: an absolute path, or a program name looked up on $PATH
  std::map<std::string, std::string> env;  // set in the child, on top of our environment
  std::vector<std::string> unset_env;      // removed from the child's environment
  std::filesystem::path cwd;               // working directory; empty = ours
  OutputMode out = OutputMode::kInherit;
  std::filesystem::path out_file;  // kFile / kAppend
  OutputMode err = OutputMode::kInherit;
  std::filesystem::path err_file;  // kFile / kAppend
  bool stdin_null = true;          // stdin from /dev/null (else ours)
  int parent_death_signal = 0;     // sent to the child when we die, even by SIGKILL (0 = none)
  bool new_process_group = false;  // its own process group: a terminal's Ctrl-C reaches only us
};

// Options for `argv` with its stdout and stderr both in `file`: appended to when `append` (a log several starts
// share), else truncated.
SubprocessOptions output_to_file(std::vector<std::string> argv, const std::filesystem::path& file, bool append);

class Subprocess {
 public:
  // Starts the program. IoError naming the program when it cannot be found, a file cannot be opened, the working
  // directory does not exist, or exec fails.
  explicit Subprocess(SubprocessOptions options);
  ~Subprocess();  // SIGKILLs and reaps a child that is still running
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  int pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return options_.argv; }
  // The exit status once it has exited (128 + signal when a signal killed it); nullopt while it runs. Never blocks
  // (beyond draining captured output that is already there).
  std::optional<int> poll();
  // Waits up to `timeout` for the exit; nullopt if it still runs then.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // Sends a signal; nothing once it has exited.
  void signal(int signal_number);
  // SIGKILL, then waits for the exit; returns the status.
  int kill();

  // Captured output so far (all of it once poll() has returned a status).
  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

 private:
  void drain(int wait_ms);

  SubprocessOptions options_;
  int pid_ = -1;
  int out_fd_ = -1;  // read ends of capture pipes
  int err_fd_ = -1;
  std::string out_text_;
  std::string err_text_;
  std::optional<int> status_;
};

// Runs a program to completion with stdout and stderr captured; the result's status is the exit status.
// TimeoutError naming the command when it outlives `timeout` (it is killed first).
struct CommandOutput {
  int status = -1;
  std::string out;
  std::string err;
};
CommandOutput run_captured(SubprocessOptions options, std::chrono::milliseconds timeout);

// Runs argv in the foreground with our stdin, stdout and stderr, in its own process group (so that a terminal's
// Ctrl-C reaches only us) and with SIGTERM as its parent-death signal. The first SIGINT/SIGTERM/SIGUSR1 we receive
// (core/signals.h handlers, installed here) is forwarded to it once, so that it checkpoints and stops. Returns its
// exit status, or 128 + signal.
int run_foreground(const std::vector<std::string>& argv);

// `text` as one bash word: unchanged when it is made of safe characters, else in single quotes ('it'\''s').
std::string shell_quote(const std::string& text);
// "a b 'c d'": argv as a shell would need it, for messages.
std::string join_command(const std::vector<std::string>& argv);

}  // namespace troupe::core
