// Progress heartbeats between a worker process and the process that waits on it.
//  - HeartbeatWriter (in the worker): a thread that every `period` publishes "<beat> <progress> <pid>" to a file of
//    the rendezvous directory (atomically: temp file + rename), beat counting up by one per write and progress being
//    core::progress_count() (core/progress.h).
//  - HangWatch (in the controller): reads those files and notes, on its own clock, when each number last changed.
//    A worker whose beat has not changed for `timeout` is frozen (SIGSTOP, a deadlocked process, a lost node); one
//    whose progress has not changed for `timeout` while it owes a reply is stuck (an infinite loop, a collective
//    waiting on a lost peer, a dropped socket). Either is a WorkerFailure naming the worker and the cause.
// Files, not sockets: they work across the nodes of an allocation (the run directory is shared) and need no thread
// in the watcher; a stuck transport cannot hide a worker's state.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace troupe::distributed {

struct Heartbeat {
  uint64_t beat = 0;
  uint64_t progress = 0;
  int64_t pid = 0;
};

// The heartbeat in `file`; nullopt when it does not exist (yet) or does not parse.
std::optional<Heartbeat> read_heartbeat(const std::filesystem::path& file);

class HeartbeatWriter {
 public:
  // Writes the first beat now, then one every `period` until destroyed. IoError when the first write fails.
  HeartbeatWriter(std::filesystem::path file, std::chrono::milliseconds period);
  ~HeartbeatWriter();  // stops the thread (within one period's wait) and joins it; the file stays
  HeartbeatWriter(const HeartbeatWriter&) = delete;
  HeartbeatWriter& operator=(const HeartbeatWriter&) = delete;

 private:
  void write();
  void loop();

  std::filesystem::path file_;
  std::chrono::milliseconds period_;
  uint64_t beat_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

class HangWatch {
 public:
  using Clock = std::chrono::steady_clock;
  explicit HangWatch(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // Watches `file` as worker `who` ("role critic rank 0"). Its clocks start now: a worker gets `timeout` to write
  // its first beat.
  void add(const std::string& who, const std::filesystem::path& file, Clock::time_point now = Clock::now());
  // Forgets what was seen of `who` and restarts its clocks (its process was restarted).
  void reset(const std::string& who, Clock::time_point now = Clock::now());
  // Reads every watched file, then throws WorkerFailure naming the first worker whose beat stood still for the
  // timeout, or that is in `busy` (worker -> since when it owes a reply) and whose progress stood still for the
  // timeout since the later of its last change and the time it became busy.
  void check(const std::map<std::string, Clock::time_point>& busy, Clock::time_point now = Clock::now());
  // The watched worker whose heartbeat file names process `pid` (e.g. which rank of a group a stopped process is).
  std::optional<std::string> worker_of(int64_t pid) const;

 private:
  struct Seen {
    std::filesystem::path file;
    std::optional<Heartbeat> last;
    Clock::time_point beat_changed;
    Clock::time_point progress_changed;
  };
  std::chrono::milliseconds timeout_;
  std::map<std::string, Seen> seen_;
};

}  // namespace troupe::distributed
