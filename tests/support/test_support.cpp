// Implementation of tests/support/test_support.h (child processes through core/subprocess.h, polling).
#include "tests/support/test_support.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include "core/errors.h"

namespace troupe::testing {

namespace {
// spdlog's registry is a function-local static inside libspdlog, made on first use. Made here, at start-up on the
// main thread, before any test starts a thread: ThreadSanitizer cannot see the static's guard (read inline in the
// uninstrumented library) and would report a thread's first log line as racing the registry's construction.
const bool kSpdlogReady = (spdlog::default_logger_raw(), true);
}  // namespace
namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& tag) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate =
        fs::temp_directory_path() / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
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

core::SubprocessOptions child_options(const std::vector<std::string>& argv, const fs::path& output_file,
                                      const std::vector<std::string>& extra_env, const fs::path& cwd) {
  core::SubprocessOptions o = core::output_to_file(argv, output_file, /*append=*/false);
  o.cwd = cwd;
  for (const auto& entry : extra_env) {
    const size_t eq = entry.find('=');
    o.env[entry.substr(0, eq)] = eq == std::string::npos ? "" : entry.substr(eq + 1);
  }
  return o;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                          const std::vector<std::string>& extra_env, const fs::path& cwd) {
  ScratchDir dir("troupe-proc");
  auto out_path = dir / "output.txt";
  ChildProcess child(argv, out_path, extra_env, cwd);
  ProcessResult result;
  result.exit_code = child.wait(timeout);
  result.output = child.output();
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const fs::path& output_file,
                           const std::vector<std::string>& extra_env, const fs::path& cwd)
    : process_(child_options(argv, output_file, extra_env, cwd)), output_file_(output_file) {}

void ChildProcess::kill(int signal_number) { process_.signal(signal_number); }

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (const auto status = process_.wait_for(timeout)) return *status;
  process_.kill();
  throw TimeoutError("child " + std::to_string(process_.pid()) + " did not exit in time; output:\n" + output());
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

namespace {
// The largest N of "<word> N/" in output (-1 when none).
int64_t last_progress_printed(const std::string& output, const std::regex& re) {
  int64_t last = -1;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), re); it != std::sregex_iterator(); ++it)
    last = std::max<int64_t>(last, std::stoll((*it)[1]));
  return last;
}
}  // namespace

int64_t last_step_printed(const std::string& output) {
  static const std::regex re(R"(step\s+(\d+)/)");
  return last_progress_printed(output, re);
}

int64_t last_iteration_printed(const std::string& output) {
  static const std::regex re(R"(iter +(\d+)/)");
  return last_progress_printed(output, re);
}

void zmq_received(const void* address) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(address));
#else
  (void)address;
#endif
}

void zmq_handoff(const void* address) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(address));
#else
  (void)address;
#endif
}

}  // namespace troupe::testing
