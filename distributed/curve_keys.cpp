// Implementation of distributed/curve_keys.h: POSIX open/fstat so that the mode is set at creation and checked on
// the descriptor that is read (no window between a check and the read).
#include "distributed/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "core/errors.h"
#include "distributed/checked_call.h"

namespace troupe::distributed {
namespace fs = std::filesystem;

namespace {

constexpr const char* kVersionLine = "# troupe curve keys v1";
constexpr size_t kZ85KeyChars = 40;

CurveKeyPair new_keypair() {
  char public_key[kZ85KeyChars + 1] = {};
  char secret_key[kZ85KeyChars + 1] = {};
  TROUPE_ZMQ(zmq_curve_keypair(public_key, secret_key));  // ENOTSUP without libsodium/tweetnacl
  return {public_key, secret_key};
}

// A Z85 key: 40 characters of ZeroMQ's Z85 alphabet that decode to 32 bytes.
bool valid_z85_key(const std::string& text) {
  if (text.size() != kZ85KeyChars) return false;
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, text.c_str()) != nullptr;
}

// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is.
void make_private_dir(const fs::path& dir) {
  if (dir.empty() || fs::is_directory(dir)) return;
  make_private_dir(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw IoError("curve keys: cannot create " + dir.string() + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& text, const fs::path& file) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("curve keys: cannot write " + file.string() + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

std::string read_all(int fd, const fs::path& file) {
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("curve keys: cannot read " + file.string() + ": " + std::strerror(errno));
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > 65536) throw DataError("curve keys: " + file.string() + " is far too large for a key file");
  }
}

// Closes a descriptor on every path out of a scope.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

CurveKeys generate_curve_keys() { return {new_keypair(), new_keypair()}; }

void write_curve_keys(const fs::path& file, const CurveKeys& keys) {
  make_private_dir(file.parent_path());
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw IoError("curve keys: cannot create " + file.string() + ": " + std::strerror(errno));
  FdCloser closer{fd};
  std::ostringstream text;
  text << kVersionLine << "\n"
       << "server_public = " << keys.server.public_key << "\n"
       << "server_secret = " << keys.server.secret_key << "\n"
       << "client_public = " << keys.client.public_key << "\n"
       << "client_secret = " << keys.client.secret_key << "\n";
  write_all(fd, text.str(), file);
  if (::fsync(fd) != 0) throw IoError("curve keys: cannot fsync " + file.string() + ": " + std::strerror(errno));
}

CurveKeys read_curve_keys(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw IoError("curve keys: cannot open " + file.string() + ": " + std::strerror(errno));
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw IoError("curve keys: cannot stat " + file.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw IoError("curve keys: " + file.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw IoError("curve keys: " + file.string() + " has mode " + mode +
                  ": the group or others may access it; a key file must be private to its owner (mode 0600)");
  }
  std::istringstream lines(read_all(fd, file));
  std::string line;
  if (!std::getline(lines, line) || line != kVersionLine)
    throw DataError("curve keys: " + file.string() + " does not start with '" + kVersionLine + "'");
  std::map<std::string, std::string> values;
  while (std::getline(lines, line)) {
    const auto eq = line.find(" = ");
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 3);
  }
  auto key = [&](const std::string& name) {
    const auto it = values.find(name);
    if (it == values.end() || !valid_z85_key(it->second))
      throw DataError("curve keys: " + file.string() + ": " + name + " is missing or not a 40-character Z85 key");
    return it->second;
  };
  return {{key("server_public"), key("server_secret")}, {key("client_public"), key("client_secret")}};
}

std::optional<CurveKeys> curve_keys_from_env() {
  const char* file = std::getenv(kCurveKeysEnv);
  if (file == nullptr || *file == '\0') return std::nullopt;
  return read_curve_keys(file);
}

}  // namespace troupe::distributed
