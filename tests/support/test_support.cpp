// Implementation of tests/support/test_support.h (POSIX spawn, pipes, polling).
#include "tests/support/test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "core/errors.h"

extern char** environ;

namespace troupe::testing {
namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& tag) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = fs::temp_directory_path() / (tag + "-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(rd() % 1000000));
    if (fs::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw IoError("could not create a scratch directory for " + tag);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!std::getenv("TROUPE_KEEP_TEST_DIRS")) fs::remove_all(path_, ec);
}

void write_file(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw IoError("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& x : extra) overridden |= x.substr(0, x.find('=')) == key;
    if (!overridden) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int spawn(const std::vector<std::string>& argv_in, int out_fd, const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = argv_in;
  auto env = merged_environment(extra_env);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                          const std::vector<std::string>& extra_env) {
  ScratchDir dir("troupe-proc");
  auto out_path = dir / "output.txt";
  ChildProcess child(argv, out_path, extra_env);
  ProcessResult result;
  result.exit_code = child.wait(timeout);
  result.output = child.output();
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const fs::path& output_file,
                           const std::vector<std::string>& extra_env)
    : output_file_(output_file) {
  int fd = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw IoError("cannot open " + output_file.string());
  try {
    pid_ = spawn(argv, fd, extra_env);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void ChildProcess::kill(int signal_number) {
  if (!reaped_) ::kill(pid_, signal_number);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = decode_status(status);
      return status_;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      reaped_ = true;
      throw TimeoutError("child " + std::to_string(pid_) + " did not exit in time; output:\n" + output());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ChildProcess::output() const { return read_file(output_file_); }

void on_rank_threads(int ranks, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

std::string cli_path() { return TROUPE_CLI_PATH; }

ProcessResult run_troupe(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  std::vector<std::string> argv = {cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, timeout);
}
std::string helper_path(const std::string& name) {
  return std::string(TROUPE_TEST_BINARY_DIR) + "/helpers/troupe_" + name;
}
fs::path source_dir() { return TROUPE_SOURCE_DIR; }

int64_t last_step_printed(const std::string& output) {
  static const std::regex re(R"(step\s+(\d+)/)");
  int64_t last = -1;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), re); it != std::sregex_iterator(); ++it)
    last = std::max<int64_t>(last, std::stoll((*it)[1]));
  return last;
}

}  // namespace troupe::testing
