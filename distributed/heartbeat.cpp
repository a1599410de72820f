// Implementation of distributed/heartbeat.h.
#include "distributed/heartbeat.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "core/errors.h"
#include "core/progress.h"
#include "distributed/worker_launch.h"

namespace troupe::distributed {

namespace fs = std::filesystem;

std::optional<Heartbeat> read_heartbeat(const fs::path& file) {
  std::ifstream in(file);
  Heartbeat h;
  if (!(in >> h.beat >> h.progress >> h.pid)) return std::nullopt;
  return h;
}

HeartbeatWriter::HeartbeatWriter(fs::path file, std::chrono::milliseconds period)
    : file_(std::move(file)), period_(period) {
  write();
  thread_ = std::thread([this] { loop(); });
}

HeartbeatWriter::~HeartbeatWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();  // bounded: the loop waits at most one period before it sees stop_
}

void HeartbeatWriter::write() {
  ++beat_;
  FileStore(file_.parent_path())
      .set(file_.filename().string(), fmt::format("{} {} {}\n", beat_, core::progress_count(), ::getpid()));
}

void HeartbeatWriter::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stop_; })) {
    try {
      write();
    } catch (const std::exception&) {
      // A full or vanished disk: the watcher sees the beats stop and reports this worker as frozen.
    }
  }
}

void HangWatch::add(const std::string& who, const fs::path& file, Clock::time_point now) {
  seen_[who] = Seen{file, std::nullopt, now, now};
}

void HangWatch::reset(const std::string& who, Clock::time_point now) {
  const auto it = seen_.find(who);
  // What was last seen stays: a leftover file of the old process is no sign of life of the new one.
  if (it != seen_.end()) it->second = Seen{it->second.file, it->second.last, now, now};
}

void HangWatch::check(const std::map<std::string, Clock::time_point>& busy, Clock::time_point now) {
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double limit = std::chrono::duration<double>(timeout_).count();
  for (auto& [who, s] : seen_) {
    const std::optional<Heartbeat> h = read_heartbeat(s.file);
    if (h && (!s.last || h->beat != s.last->beat || h->pid != s.last->pid)) s.beat_changed = now;
    if (h && (!s.last || h->progress != s.last->progress || h->pid != s.last->pid)) s.progress_changed = now;
    if (h) s.last = h;
  }
  for (const auto& [who, s] : seen_) {
    if (now - s.beat_changed > timeout_) {
      throw WorkerFailure(
          fmt::format("worker {} is frozen: {} for {:.1f} s (fault.hang_timeout_s = {}): stopped, deadlocked or its "
                      "node lost",
                      who,
                      s.last ? fmt::format("no heartbeat after beat {} in {}", s.last->beat, s.file.string())
                             : "no heartbeat at all in " + s.file.string(),
                      seconds(now - s.beat_changed), limit),
          who);
    }
    const auto b = busy.find(who);
    if (b == busy.end()) continue;
    const Clock::time_point since = std::max(b->second, s.progress_changed);
    if (now - since > timeout_) {
      throw WorkerFailure(
          fmt::format("worker {} is stuck: alive (heartbeat {}) but no progress for {:.1f} s while it owes a reply "
                      "(fault.hang_timeout_s = {}): an endless loop, a collective waiting on a lost peer, or a lost "
                      "connection",
                      who, s.last ? s.last->beat : 0, seconds(now - since), limit),
          who);
    }
  }
}

std::optional<std::string> HangWatch::worker_of(int64_t pid) const {
  for (const auto& [who, s] : seen_) {
    const std::optional<Heartbeat> h = read_heartbeat(s.file);
    if (h && h->pid == pid) return who;
  }
  return std::nullopt;
}

}  // namespace troupe::distributed
