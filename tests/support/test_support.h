// Helpers shared by the test suites: scratch directories, running child processes,
// waiting on a condition with a deadline. Not a mocking layer: tests run real things.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/subprocess.h"

namespace troupe::testing {

// A fresh directory under $TMPDIR, removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag = "troupe-test");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path`, creating parent directories.
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);

// Result of running a child process to completion.
struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal if it was killed
  std::string output;  // stdout and stderr interleaved
};

// Runs argv[0] with arguments (no shell), capturing stdout+stderr; kills it after `timeout`.
// `cwd`: the child's working directory (empty = ours).
ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::seconds timeout = std::chrono::seconds(120),
                          const std::vector<std::string>& extra_env = {}, const std::filesystem::path& cwd = {});

// A child process running in the background, with its output going to a file.
class ChildProcess {
 public:
  // argv[0]: an absolute path or a name on PATH; stdout and stderr go to `output_file`; extra_env: "NAME=value".
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& output_file,
               const std::vector<std::string>& extra_env = {}, const std::filesystem::path& cwd = {});
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  int pid() const { return process_.pid(); }
  void kill(int signal_number);
  // Waits for exit; returns exit status or 128 + signal. Throws TimeoutError after `timeout`.
  int wait(std::chrono::milliseconds timeout);
  std::string output() const;

 private:
  core::Subprocess process_;  // SIGKILLed and reaped on destruction if still running
  std::filesystem::path output_file_;
};

// Polls `condition` every few milliseconds until it holds; false if `timeout` passes first.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// The last "iter N/" a PPO controller printed in `output` (-1 when none).
int64_t last_iteration_printed(const std::string& output);

// Runs body(rank) on one thread per rank in [0, ranks), joins them all, and rethrows the first rank's exception on the
// caller's thread (for in-process tests of data-parallel code, one thread per rank).
void on_rank_threads(int ranks, const std::function<void(int)>& body);

// ThreadSanitizer builds: declares that the bytes at `address` are handed to another thread through libzmq, whose
// lock-free queues TSan cannot see (the transport's receive path acquires them: distributed/transport.cpp). For
// tests that send raw ZeroMQ messages over inproc. A no-op in other builds.
void zmq_handoff(const void* address);
// The receiving side of such a hand-off: bytes of a message received with raw ZeroMQ calls. A no-op in other builds.
void zmq_received(const void* address);

// Path of the troupe CLI and of a test helper executable built next to the tests.
std::string cli_path();
// run_process of the troupe CLI with `args`.
ProcessResult run_troupe(const std::vector<std::string>& args,
                         std::chrono::seconds timeout = std::chrono::seconds(120));
// Highest N in "step N/" progress lines printed so far (-1 if none): how far a training run got.
int64_t last_step_printed(const std::string& output);
std::string helper_path(const std::string& name);
std::filesystem::path source_dir();

}  // namespace troupe::testing
