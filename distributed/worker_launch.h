// Starting role workers as processes, in two pure pieces and a store:
//  - plan_worker_launches: the command line of every worker group (one `troupe worker` process, an
//    `mpirun -np N` job for a data-parallel group, or an `srun` job step inside a Slurm allocation), its log file and
//    the rendezvous key of each role it hosts. No process is started: tested on its own.
//  - FileStore: a file-based rendezvous store (one file per key in a directory every process sees, such as the run
//    directory, also across the nodes of an allocation): a worker publishes the endpoint it bound, the launcher
//    waits for every key with a deadline and a liveness check.
// The processes themselves are started and watched by distributed/launcher.h (ProcessGroup over core::Subprocess).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::distributed {

class FileStore {
 public:
  explicit FileStore(std::filesystem::path dir);  // creates the directory (mode 0700 when it is new)
  const std::filesystem::path& dir() const { return dir_; }
  // The file holding `key` (keys are plain names: [A-Za-z0-9._+-]).
  std::filesystem::path path_of(const std::string& key) const;
  // Atomic: a reader sees the old value, nothing, or the whole new value (temp file + rename); the file has mode
  // 0600. IoError on failure.
  void set(const std::string& key, const std::string& value) const;
  std::optional<std::string> get(const std::string& key) const;
  void remove(const std::string& key) const;
  // The value of `key` once it is set. `check` runs between polls (it throws to abort, e.g. when the process that
  // should publish the key died); TimeoutError naming the key and `what` after `timeout`.
  std::string wait(const std::string& key, std::chrono::milliseconds timeout, const std::function<void()>& check = {},
                   const std::string& what = "") const;

 private:
  std::filesystem::path dir_;
};

// Roles placed in one process (placement.colocate), or one role's data-parallel group.
struct WorkerGroup {
  std::vector<std::string> roles;  // e.g. {"reward", "reference"}
  int64_t ranks = 1;               // > 1: a data-parallel group of one role (mpirun or srun tasks)
  std::string srun_args;           // extra srun arguments (placement.srun_args[label]), split on spaces
};

struct WorkerLaunchOptions {
  std::string executable;     // troupe
  std::string config;         // the run's resolved config.yaml
  std::filesystem::path dir;  // logs and rendezvous files (<run>/workers)
  bool tcp = false;           // tcp://<bind_host>:* endpoints; else ipc:// sockets under /tmp
  std::string bind_host = "127.0.0.1";
  std::string ipc_prefix;  // "ipc:///tmp/troupe-<pid>-": ipc paths are limited to ~107 bytes
  std::string srun;        // the srun program: each group is a job step (empty: start locally)
  std::string mpirun;      // the mpirun program, for local groups of more than one rank
  bool as_root = false;    // mpirun needs --allow-run-as-root
  // The run's CURVE key file (curve_keys.h), handed to workers in $TROUPE_CURVE_KEYS (WorkerLaunch::env), never in
  // argv; empty = plaintext transport.
  std::filesystem::path curve_keys;
};

struct WorkerLaunch {
  std::string label;  // "actor", "reward+reference"
  int64_t ranks = 1;
  std::vector<std::string> argv;
  std::filesystem::path log;                // <dir>/<label>.log
  std::map<std::string, std::string> keys;  // role -> its rendezvous key in the FileStore over `dir`
  std::map<std::string, std::string> env;   // set in the worker's environment (TROUPE_CURVE_KEYS=<key file>)
};

// "actor", "reward+reference": how a group is named in logs, file names and placement.srun_args.
std::string worker_group_label(const std::vector<std::string>& roles);

// One launch per group, in order. ConfigError when a multi-rank group would need mpirun and none is given.
std::vector<WorkerLaunch> plan_worker_launches(const std::vector<WorkerGroup>& groups, const WorkerLaunchOptions& o);

// True for an address only this host can reach: 127.0.0.0/8, ::1 and "localhost" (brackets around an IPv6
// address allowed). A tcp bind elsewhere without CURVE is a config error (rlhf::PlacementSection::validate).
bool is_loopback_host(const std::string& host);

// The endpoint a worker publishes for the one it bound: a wildcard address (tcp://0.0.0.0:P, tcp://*:P) becomes
// this host's name, so that a controller on another node can connect.
std::string reachable_endpoint(const std::string& bound);

}  // namespace troupe::distributed
