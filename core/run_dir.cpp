// Implementation of core/run_dir.h.
#include "core/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/runtime.h"

namespace troupe::core {
namespace fs = std::filesystem;

std::string to_string(RunStatus s) {
  switch (s) {
    case RunStatus::Running: return "running";
    case RunStatus::Finished: return "finished";
    case RunStatus::Failed: return "failed";
    case RunStatus::Interrupted: return "interrupted";
  }
  return "unknown";
}

void write_file_atomic(const fs::path& path, const std::string& text, unsigned mode) {
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  int fd = TROUPE_CHECK_POSIX(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode)));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      ::close(fd);
      troupe::detail::throw_io_error(__FILE__, __LINE__, "write " + tmp.string() + " failed");
    }
    done += static_cast<size_t>(n);
  }
  TROUPE_CHECK_POSIX(::fsync(fd));
  TROUPE_CHECK_POSIX(::close(fd));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw IoError("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
}

RunStatus RunDirectory::read_status(const fs::path& run_path) {
  std::ifstream in(run_path / "status");
  std::string word;
  if (!(in >> word)) return RunStatus::Running;
  if (word == "finished") return RunStatus::Finished;
  if (word == "failed") return RunStatus::Failed;
  if (word == "interrupted") return RunStatus::Interrupted;
  return RunStatus::Running;
}

namespace {

std::string timestamp_name() { return format_utc(std::chrono::system_clock::now(), "%Y%m%d-%H%M%S"); }

int lock_run(const fs::path& dir) {
  const fs::path lock = dir / ".lock";
  int fd = TROUPE_CHECK_POSIX(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw IoError("run directory " + dir.string() + " is in use by another troupe process (" + lock.string() +
                  " is locked)");
  }
  return fd;
}

}  // namespace

RunDirectory RunDirectory::open(const RunSection& section) {
  const std::string name = section.name.empty() ? timestamp_name() : section.name;
  const fs::path path = fs::path(section.dir) / name;
  bool resuming = false;
  if (fs::exists(path)) {
    const RunStatus status = read_status(path);
    const bool finished = status == RunStatus::Finished;
    if (section.overwrite) {
      int fd = lock_run(path);  // never wipe a run another process is writing
      ::close(fd);
      fs::remove_all(path);
    } else if (finished) {
      throw ConfigError("run.name: run '" + name + "' already finished in " + path.string() +
                        "; pick another run.name or set run.overwrite=true");
    } else if (section.resume == ResumePolicy::kNever) {
      throw ConfigError("run.resume: run '" + name + "' exists unfinished (" + to_string(status) + ") in " +
                        path.string() + " and run.resume=never; set run.resume=auto or run.overwrite=true");
    } else {
      resuming = true;
    }
  } else if (section.resume == ResumePolicy::kMust) {
    throw ConfigError("run.resume: run.resume=must but there is no run '" + name + "' in " + section.dir);
  }
  if (!fs::exists(path)) {
    if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
      throw IoError("cannot create the run directory " + path.string() + ": " + std::strerror(errno));
  }
  fs::create_directories(path / "checkpoints");
  int fd = lock_run(path);
  RunDirectory dir(path, name, resuming, fd);
  dir.set_status(RunStatus::Running);
  return dir;
}

RunDirectory::RunDirectory(fs::path path, std::string name, bool resuming, int lock_fd)
    : path_(std::move(path)), name_(std::move(name)), resuming_(resuming), lock_fd_(lock_fd) {}

RunDirectory::RunDirectory(RunDirectory&& other) noexcept
    : path_(std::move(other.path_)),
      name_(std::move(other.name_)),
      resuming_(other.resuming_),
      lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

RunDirectory::~RunDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void RunDirectory::set_status(RunStatus status) { write_file_atomic(path_ / "status", to_string(status) + "\n"); }

}  // namespace troupe::core
