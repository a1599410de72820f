// The local launcher's process handling: start worker processes (each with its output in a log file and
// PR_SET_PDEATHSIG so that none outlives a controller killed with -9), watch them, and tear them all down (SIGTERM,
// then SIGKILL after a grace period). Used by `troupe run` for placement.mode = processes; the Slurm launcher reuses
// it inside an allocation. Not a scheduler and not MPI: each worker is one process.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/subprocess.h"

namespace troupe::distributed {

class WorkerProcess {
 public:
  // Starts argv (core::Subprocess) with stdout and stderr appended to `log`, in its own process group, killed
  // (SIGKILL) when this process dies, with `env` added to its environment (e.g. WorkerLaunch::env: the CURVE key
  // file's name, which must not travel in argv). IoError when it cannot be started.
  WorkerProcess(std::string name, const std::vector<std::string>& argv, const std::filesystem::path& log,
                const std::map<std::string, std::string>& env = {});
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  const std::string& name() const { return name_; }
  int pid() const { return process_.pid(); }
  const std::filesystem::path& log() const { return log_; }
  const std::vector<std::string>& argv() const { return process_.argv(); }
  const std::map<std::string, std::string>& env() const { return env_; }
  // The exit status (128 + signal when killed) once it has exited; nullopt while it runs. Never blocks.
  std::optional<int> poll();
  void signal(int signal_number);
  // Waits up to `timeout` for the exit; nullopt if still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  std::string name_;
  std::filesystem::path log_;
  std::map<std::string, std::string> env_;
  core::Subprocess process_;  // SIGKILLed and reaped on destruction if still running
};

// A set of workers that live and die together.
class ProcessGroup {
 public:
  ProcessGroup() = default;
  ~ProcessGroup();  // terminate(2 s)
  WorkerProcess& start(std::string name, const std::vector<std::string>& argv, const std::filesystem::path& log,
                       const std::map<std::string, std::string>& env = {});
  // Throws WorkerFailure naming the first worker that has exited (with its status and the last lines of its log), or
  // that  // has been stopped (state T, e.g. SIGSTOP; itself or a process it started, such as an mpirun rank) at this
  // call and the previous one. Call it every heartbeat: a stopped worker is then an error within two heartbeats.
  void check() const;
  // SIGKILLs the worker called `name` with its whole process group (an mpirun and its ranks), reaps it and starts
  // the same command again, appending to the same log. Error when no worker has that name.
  WorkerProcess& restart(const std::string& name);
  // SIGTERM to every running worker, SIGKILL to those still running after `grace`; reaps all.
  void terminate(std::chrono::milliseconds grace);
  std::vector<WorkerProcess*> workers();

 private:
  std::vector<std::unique_ptr<WorkerProcess>> workers_;
  mutable std::map<int, int> stopped_checks_;  // pid -> consecutive checks that found it stopped
};

// The last `lines` lines of a text file ("" when unreadable).
std::string tail_lines(const std::filesystem::path& file, size_t lines);

}  // namespace troupe::distributed
