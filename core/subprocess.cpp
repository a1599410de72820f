// Implementation of core/subprocess.h: fork + exec, with the exec error sent back over a close-on-exec pipe.
#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "core/errors.h"
#include "core/runtime.h"
#include "core/signals.h"

extern char** environ;

namespace troupe::core {
namespace fs = std::filesystem;

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Closes a descriptor when it goes out of scope unless released.
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

// Opens the file a stream is sent to (close-on-exec in the parent; dup2 in the child clears the flag).
int open_output(OutputMode mode, const fs::path& file, const std::string& what) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == OutputMode::kAppend ? O_APPEND : O_TRUNC);
  if (file.empty()) throw IoError("subprocess: " + what + " needs a file name");
  const int fd = ::open(file.c_str(), flags, 0644);
  if (fd < 0) throw IoError("cannot open " + file.string() + " for " + what + ": " + std::strerror(errno));
  return fd;
}

// The child's environment: ours, minus unset_env, plus env.
std::vector<std::string> child_environment(const SubprocessOptions& o) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) vars[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& name : o.unset_env) vars.erase(name);
  for (const auto& [k, v] : o.env) vars[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Child side, after fork: only async-signal-safe calls. Reports a failure as (step, errno) on `report`.
[[noreturn]] void exec_child(const SubprocessOptions& o, pid_t parent, int stdout_fd, int stderr_fd, int null_fd,
                             char* const* argv, char* const* envp, int report) {
  auto fail = [report](int step) {
    const int payload[2] = {step, errno};
    [[maybe_unused]] ssize_t n = ::write(report, payload, sizeof payload);
    ::_exit(127);
  };
  if (o.new_process_group) ::setpgid(0, 0);
  if (o.parent_death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, o.parent_death_signal);
    if (::getppid() != parent) ::_exit(128 + o.parent_death_signal);  // the parent died before prctl
  }
  if (o.stdin_null && ::dup2(null_fd, 0) < 0) fail(1);
  if (stdout_fd >= 0 && ::dup2(stdout_fd, 1) < 0) fail(1);
  if (o.err == OutputMode::kStdout) {
    if (::dup2(1, 2) < 0) fail(1);
  } else if (stderr_fd >= 0 && ::dup2(stderr_fd, 2) < 0) {
    fail(1);
  }
  if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) fail(2);
  ::execve(argv[0], argv, envp);
  fail(3);
  ::_exit(127);  // fail() does not return either
}

}  // namespace

SubprocessOptions output_to_file(std::vector<std::string> argv, const fs::path& file, bool append) {
  SubprocessOptions o;
  o.argv = std::move(argv);
  o.out = append ? OutputMode::kAppend : OutputMode::kFile;
  o.out_file = file;
  o.err = OutputMode::kStdout;
  return o;
}

Subprocess::Subprocess(SubprocessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) throw IoError("subprocess: empty command");
  std::vector<std::string> argv = options_.argv;
  if (argv[0].find('/') == std::string::npos) {
    const auto found = find_on_path(argv[0]);
    if (!found) throw IoError("cannot run " + argv[0] + ": not found on PATH");
    argv[0] = found->string();
  }
  std::vector<std::string> env = child_environment(options_);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);

  Fd null_fd{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  if (null_fd.fd < 0) throw IoError("cannot open /dev/null: " + std::string(std::strerror(errno)));
  Fd out_write, err_write, out_read, err_read;
  auto prepare = [&](OutputMode mode, const fs::path& file, Fd& write_end, Fd& read_end, const char* what) {
    switch (mode) {
      case OutputMode::kInherit:
      case OutputMode::kStdout: break;
      case OutputMode::kNull: write_end.fd = ::fcntl(null_fd.fd, F_DUPFD_CLOEXEC, 3); break;
      case OutputMode::kFile:
      case OutputMode::kAppend: write_end.fd = open_output(mode, file, what); break;
      case OutputMode::kCapture: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw IoError("pipe failed: " + std::string(std::strerror(errno)));
        read_end.fd = p[0];
        write_end.fd = p[1];
        break;
      }
    }
  };
  if (options_.out == OutputMode::kStdout) throw IoError("subprocess: stdout cannot be sent to stdout");
  prepare(options_.out, options_.out_file, out_write, out_read, "stdout");
  prepare(options_.err, options_.err_file, err_write, err_read, "stderr");
  int report_pipe[2];
  if (::pipe2(report_pipe, O_CLOEXEC) != 0) throw IoError("pipe failed: " + std::string(std::strerror(errno)));
  Fd report_read{report_pipe[0]}, report_write{report_pipe[1]};

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError("fork failed for " + argv[0] + ": " + std::strerror(errno));
  if (pid == 0) {
    exec_child(options_, parent, out_write.fd, err_write.fd, null_fd.fd, c_argv.data(), c_env.data(), report_write.fd);
  }
  pid_ = pid;
  report_write.reset();
  out_write.reset();
  err_write.reset();
  // exec succeeded when the report pipe closes with nothing in it.
  int payload[2] = {0, 0};
  ssize_t got;
  while ((got = ::read(report_read.fd, payload, sizeof payload)) < 0 && errno == EINTR) {
  }
  if (got > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    const char* step = payload[0] == 1 ? "redirecting output" : payload[0] == 2 ? "changing to " : "exec";
    std::string where = payload[0] == 2 ? options_.cwd.string() : "";
    throw IoError("cannot run " + argv[0] + ": " + step + where + ": " + std::strerror(payload[1]));
  }
  for (Fd* fd : {&out_read, &err_read}) {
    if (fd->fd >= 0) ::fcntl(fd->fd, F_SETFL, O_NONBLOCK);
  }
  out_fd_ = out_read.release();
  err_fd_ = err_read.release();
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : options_(std::move(other.options_)),
      pid_(std::exchange(other.pid_, -1)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)),
      out_text_(std::move(other.out_text_)),
      err_text_(std::move(other.err_text_)),
      status_(std::move(other.status_)) {}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !poll()) kill();
  for (int fd : {out_fd_, err_fd_})
    if (fd >= 0) ::close(fd);
}

void Subprocess::drain(int wait_ms) {
  if (out_fd_ < 0 && err_fd_ < 0) return;
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (::poll(fds, 2, wait_ms) <= 0) return;
  char buffer[65536];
  for (int i = 0; i < 2; ++i) {
    int& fd = i == 0 ? out_fd_ : err_fd_;
    if (fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    while (true) {
      const ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got > 0) {
        (i == 0 ? out_text_ : err_text_).append(buffer, static_cast<size_t>(got));
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      if (got == 0 || errno != EAGAIN) {  // end of stream (or a broken pipe): done with it
        ::close(fd);
        fd = -1;
      }
      break;
    }
  }
}

std::optional<int> Subprocess::poll() {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  drain(0);
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = decode_status(status);
    // The rest of its output: whatever is in the pipes now (a grandchild holding them open is not waited for).
    for (int i = 0; i < 64 && (out_fd_ >= 0 || err_fd_ >= 0); ++i) {
      const size_t before = out_text_.size() + err_text_.size();
      drain(i == 0 ? 50 : 10);
      if (out_text_.size() + err_text_.size() == before) break;
    }
  }
  return status_;
}

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!poll()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    const int step = static_cast<int>(std::min<int64_t>(left.count(), 5));
    if (out_fd_ >= 0 || err_fd_ >= 0)
      drain(step);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(step));
  }
  return status_;
}

void Subprocess::signal(int signal_number) {
  if (pid_ > 0 && !poll()) ::kill(pid_, signal_number);
}

int Subprocess::kill() {
  if (pid_ <= 0) return -1;
  if (!poll()) {
    ::kill(pid_, SIGKILL);
    while (!wait_for(std::chrono::milliseconds(1000))) {
    }
  }
  return *status_;
}

CommandOutput run_captured(SubprocessOptions options, std::chrono::milliseconds timeout) {
  options.out = OutputMode::kCapture;
  if (options.err != OutputMode::kStdout) options.err = OutputMode::kCapture;
  Subprocess child(std::move(options));
  if (!child.wait_for(timeout)) {
    child.kill();
    throw TimeoutError("`" + join_command(child.argv()) + "` did not finish within " +
                       std::to_string(timeout.count() / 1000) + " s");
  }
  return {*child.poll(), child.out(), child.err()};
}

int run_foreground(const std::vector<std::string>& argv) {
  install_stop_handlers();
  SubprocessOptions o;
  o.argv = argv;
  o.stdin_null = false;
  o.new_process_group = true;
  o.parent_death_signal = SIGTERM;
  Subprocess child(std::move(o));
  bool forwarded = false;
  while (true) {
    if (const auto status = child.wait_for(std::chrono::milliseconds(20))) return *status;
    if (!forwarded && stop_requested()) {
      child.signal(stop_signal());
      forwarded = true;
    }
  }
}

std::string shell_quote(const std::string& text) {
  if (text.empty()) return "''";
  bool safe = true;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("_-+=./:,@%", c) != nullptr;
    safe &= ok;
  }
  if (safe) return text;
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + shell_quote(a);
  return s;
}

}  // namespace troupe::core
