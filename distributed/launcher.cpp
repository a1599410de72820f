// Implementation of distributed/launcher.h.
#include "distributed/launcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "core/errors.h"

namespace troupe::distributed {

namespace {
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

namespace {
core::SubprocessOptions worker_options(const std::vector<std::string>& argv, const std::filesystem::path& log,
                                       const std::map<std::string, std::string>& env) {
  core::SubprocessOptions o = core::output_to_file(argv, log, /*append=*/true);
  o.env = env;
  // Dies with its parent, even one killed with -9. Its own process group: a terminal's Ctrl-C reaches only the
  // controller, which stops the workers itself after its last checkpoint.
  o.parent_death_signal = SIGKILL;
  o.new_process_group = true;
  return o;
}
}  // namespace

WorkerProcess::WorkerProcess(std::string name, const std::vector<std::string>& argv, const std::filesystem::path& log,
                             const std::map<std::string, std::string>& env)
    : name_(std::move(name)), log_(log), env_(env), process_(worker_options(argv, log, env)) {}

std::optional<int> WorkerProcess::poll() { return process_.poll(); }

void WorkerProcess::signal(int signal_number) { process_.signal(signal_number); }

std::optional<int> WorkerProcess::wait(std::chrono::milliseconds timeout) { return process_.wait_for(timeout); }

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
                                   const std::filesystem::path& log, const std::map<std::string, std::string>& env) {
  workers_.push_back(std::make_unique<WorkerProcess>(std::move(name), argv, log, env));
  return *workers_.back();
}

void ProcessGroup::check() const {
  for (const auto& w : workers_) {
    if (const auto status = w->poll()) {
      throw WorkerFailure("worker " + w->name() + " (pid " + std::to_string(w->pid()) + ") exited with status " +
                              std::to_string(*status) +
                              (*status > 128 ? " (signal " + std::to_string(*status - 128) + ")" : "") +
                              "; last lines of " + w->log().string() + ":" + tail_lines(w->log(), 8),
                          w->name());
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
      throw WorkerFailure("worker " + w->name() + " (pid " + std::to_string(w->pid()) + ") is stopped: process " +
                              std::to_string(stopped) + " is in state T (SIGSTOP or SIGTSTP) and cannot answer " +
                              "requests; send it SIGCONT, or let the run stop here and resume it later",
                          w->name(), stopped);
    }
  }
}

WorkerProcess& ProcessGroup::restart(const std::string& name) {
  for (auto& w : workers_) {
    if (w->name() != name) continue;
    const std::vector<std::string> argv = w->argv();
    const std::filesystem::path log = w->log();
    const std::map<std::string, std::string> env = w->env();
    stopped_checks_.erase(w->pid());
    if (!w->poll()) ::kill(-w->pid(), SIGKILL);  // its process group: every rank of an mpirun, stopped ones too
    w.reset();                                   // reaps it (SIGKILL again when it still runs)
    w = std::make_unique<WorkerProcess>(name, argv, log, env);
    return *w;
  }
  throw Error("restart: no worker called '" + name + "'");
}

void ProcessGroup::terminate(std::chrono::milliseconds grace) {
  for (auto& w : workers_) {
    w->signal(SIGTERM);
    w->signal(SIGCONT);  // a stopped worker handles its SIGTERM only once continued
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& w : workers_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
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
