// Implementation of cluster/subprocess.h (posix_spawn and pipes for captured commands, fork/exec for foreground
// runs).
#include "cluster/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/errors.h"
#include "core/signals.h"

extern char** environ;

namespace troupe::cluster {
namespace fs = std::filesystem;

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

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

CommandResult run_command(const std::vector<std::string>& argv_in, const CommandOptions& options) {
  if (argv_in.empty()) throw IoError("run_command: empty command");
  int out_pipe[2], err_pipe[2];
  TROUPE_CHECK_POSIX(::pipe2(out_pipe, O_CLOEXEC));
  Fd out_read{out_pipe[0]}, out_write{out_pipe[1]};
  TROUPE_CHECK_POSIX(::pipe2(err_pipe, O_CLOEXEC));
  Fd err_read{err_pipe[0]}, err_write{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.fd, 2);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  std::vector<std::string> argv = argv_in;
  auto c_argv = c_strings(argv);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("cannot run " + argv[0] + ": " + std::strerror(rc));
  out_write.reset();
  err_write.reset();

  // Drain both pipes until they close (the child and anything it left behind exited), then reap.
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool out_open = true, err_open = true;
  char buffer[4096];
  while (out_open || err_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      throw TimeoutError("`" + join_command(argv_in) + "` did not finish within " +
                         std::to_string(options.timeout.count() / 1000) + " s");
    }
    pollfd fds[2] = {{out_open ? out_read.fd : -1, POLLIN, 0}, {err_open ? err_read.fd : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) troupe::detail::throw_io_error(__FILE__, __LINE__, "poll failed");
    for (int i = 0; i < 2 && n > 0; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0)
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(got));
      else if (got == 0 || errno != EINTR)
        (i == 0 ? out_open : err_open) = false;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  return result;
}

int run_foreground(const std::vector<std::string>& argv_in) {
  if (argv_in.empty()) throw IoError("run_foreground: empty command");
  core::install_stop_handlers();
  std::vector<std::string> argv = argv_in;
  auto c_argv = c_strings(argv);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) troupe::detail::throw_io_error(__FILE__, __LINE__, "fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);  // we died before prctl: nobody would forward a stop
    ::execv(c_argv[0], c_argv.data());
    ::_exit(127);
  }
  bool forwarded = false;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) troupe::detail::throw_io_error(__FILE__, __LINE__, "waitpid failed");
    if (!forwarded && core::stop_requested()) {
      ::kill(pid, core::stop_signal());
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace troupe::cluster
