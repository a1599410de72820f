// Implementation of distributed/launcher.h.
#include "distributed/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <map>
#include <fstream>
#include <memory>
#include <thread>

#include "core/errors.h"

namespace troupe::distributed {

namespace {
int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// pid -> (parent pid, state letter) of every process, from /proc/<pid>/stat ("pid (comm) S ppid ...": comm may hold
// spaces and parentheses, so the fields after it are found from the last ')').
std::map<int, std::pair<int, char>> process_table() {
  std::map<int, std::pair<int, char>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;  // exited meanwhile
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    char state = stat[close + 2];
    int ppid = std::atoi(stat.c_str() + close + 4);
    out[std::atoi(name.c_str())] = {ppid, state};
  }
  return out;
}

// A process stopped by a signal (state T: SIGSTOP, SIGTSTP, SIGTTIN/OU) among `root` and its descendants (an
// mpirun's ranks), or -1. A debugger's tracing stop (t) is deliberate and not counted.
int stopped_in_tree(int root, const std::map<int, std::pair<int, char>>& table) {
  std::vector<int> frontier{root};
  while (!frontier.empty()) {
    const int pid = frontier.back();
    frontier.pop_back();
    if (const auto it = table.find(pid); it != table.end() && it->second.second == 'T') return pid;
    for (const auto& [child, info] : table)
      if (info.first == pid) frontier.push_back(child);
  }
  return -1;
}
}  // namespace

WorkerProcess::WorkerProcess(std::string name, const std::vector<std::string>& argv, const std::filesystem::path& log)
    : name_(std::move(name)), log_(log) {
  if (argv.empty()) throw IoError("launcher: empty command for " + name_);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("launcher: cannot open " + log.string() + ": " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    throw IoError("launcher: fork failed for " + name_ + ": " + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Dies with its parent, even one killed with -9.
    // Its own process group: a terminal's Ctrl-C reaches only the controller, which stops the workers itself
    // after its last checkpoint.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
}

WorkerProcess::~WorkerProcess() {
  if (!poll()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::optional<int> WorkerProcess::poll() {
  if (status_) return status_;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) status_ = decode_status(status);
  return status_;
}

void WorkerProcess::signal(int signal_number) {
  if (!poll()) ::kill(pid_, signal_number);
}

std::optional<int> WorkerProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

std::string tail_lines(const std::filesystem::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "\n  | " + l;
  return out;
}

ProcessGroup::~ProcessGroup() { terminate(std::chrono::seconds(2)); }

WorkerProcess& ProcessGroup::start(std::string name, const std::vector<std::string>& argv,
                                   const std::filesystem::path& log) {
  workers_.push_back(std::make_unique<WorkerProcess>(std::move(name), argv, log));
  return *workers_.back();
}

void ProcessGroup::check() const {
  for (const auto& w : workers_) {
    if (const auto status = w->poll()) {
      throw Error("worker " + w->name() + " (pid " + std::to_string(w->pid()) + ") exited with status " +
                  std::to_string(*status) + (*status > 128 ? " (signal " + std::to_string(*status - 128) + ")" : "") +
                  "; last lines of " + w->log().string() + ":" + tail_lines(w->log(), 8));
    }
  }
  // A stopped worker is alive but cannot answer: seen stopped at two checks in a row (a heartbeat apart), it is an
  // error now rather than a request timeout minutes later.
  const auto table = process_table();
  for (const auto& w : workers_) {
    const int stopped = stopped_in_tree(w->pid(), table);
    int& seen = stopped_checks_[w->pid()];
    seen = stopped < 0 ? 0 : seen + 1;
    if (seen >= 2) {
      throw Error("worker " + w->name() + " (pid " + std::to_string(w->pid()) + ") is stopped: process " +
                  std::to_string(stopped) + " is in state T (SIGSTOP or SIGTSTP) and cannot answer requests; " +
                  "send it SIGCONT, or let the run stop here and resume it later");
    }
  }
}

void ProcessGroup::terminate(std::chrono::milliseconds grace) {
  for (auto& w : workers_) {
    w->signal(SIGTERM);
    w->signal(SIGCONT);  // a stopped worker handles its SIGTERM only once continued
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& w : workers_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!w->wait(std::max(left, std::chrono::milliseconds(0)))) w->signal(SIGKILL);
    w->wait(std::chrono::seconds(5));
  }
}

std::vector<WorkerProcess*> ProcessGroup::workers() {
  std::vector<WorkerProcess*> out;
  for (auto& w : workers_) out.push_back(w.get());
  return out;
}

}  // namespace troupe::distributed
