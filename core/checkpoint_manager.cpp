// On-disk checkpoints for core/checkpoint_manager.h: the cereal manifest, fsynced file writes
// with CRC-32, atomic publish and prune, and verified loading.
// Not a general file-system utility: every helper here serves the step_<N>/ layout.
#include "core/checkpoint_manager.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cereal/archives/json.hpp>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/progress.h"
#include "core/runtime.h"

namespace troupe::core {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifestBin = "manifest.bin";
constexpr const char* kManifestJson = "manifest.json";
constexpr const char* kRngFile = "rng.bin";
constexpr const char* kStepPrefix = "step_";
constexpr const char* kTmpPrefix = ".tmp-";

// One file of a checkpoint as the manifest records it.
struct ManifestFile {
  std::string name;    // plain file name inside the step directory
  uint64_t bytes = 0;  // exact size
  uint32_t crc32 = 0;  // CRC-32 (IEEE, as zlib) of the whole file

  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(name), CEREAL_NVP(bytes), CEREAL_NVP(crc32));
  }
};

// Everything manifest.bin holds after the magic and version fields.
struct Manifest {
  int64_t step = 0;
  int64_t created_unix_ms = 0;
  std::string created_utc;                                        // ISO 8601, for people
  std::map<std::string, std::vector<std::string>> tensor_groups;  // group -> tensor names
  std::vector<std::string> optimizers;
  bool torch_rng = false;
  std::vector<std::string> rng_engines;
  std::map<std::string, ExtraValue> extra;
  std::vector<ManifestFile> files;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(step), CEREAL_NVP(created_unix_ms), CEREAL_NVP(created_utc), CEREAL_NVP(tensor_groups),
       CEREAL_NVP(optimizers), CEREAL_NVP(torch_rng), CEREAL_NVP(rng_engines), CEREAL_NVP(extra), CEREAL_NVP(files));
  }
};

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path, int err = errno) {
  throw IoError("checkpoint: " + what + " " + path.string() + ": " + std::strerror(err));
}

// A file written through one fd: counts bytes and CRC-32 as they go, fsyncs on finish().
class DurableFile {
 public:
  explicit DurableFile(fs::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_errno("cannot create", path_);
  }
  ~DurableFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;

  // Never throws and always reports success: torch's archive writer turns a short write into an
  // exception that its destructor raises again (std::terminate). A failure is recorded instead,
  // later bytes are dropped, and finish() raises it as IoError.
  size_t write_some(const void* data, size_t n) noexcept {
    if (error_ != 0) return n;
    const char* p = static_cast<const char*>(data);
    for (size_t left = n; left > 0;) {
      ssize_t w = ::write(fd_, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        error_ = errno;
        return n;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    crc_.process_bytes(data, n);
    bytes_ += n;
    return n;
  }
  void write(std::string_view bytes) { write_some(bytes.data(), bytes.size()); }

  ManifestFile finish() {
    if (error_ != 0) throw_errno("cannot write", path_, error_);
    if (::fsync(fd_) != 0) throw_errno("cannot fsync", path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_errno("cannot close", path_);
    return {path_.filename().string(), bytes_, crc_.checksum()};
  }

 private:
  fs::path path_;
  int fd_ = -1;
  int error_ = 0;
  uint64_t bytes_ = 0;
  boost::crc_32_type crc_;
};

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_errno("cannot fsync directory", dir, err);
}

// Best-effort removal of a failed save's temporary directory; the save's own error wins.
void discard(const fs::path& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

std::string pid_suffix() { return "-" + std::to_string(::getpid()); }

// The N of a directory named step_<digits>, else nullopt.
std::optional<int64_t> parse_step_name(const std::string& name) {
  const size_t prefix = std::strlen(kStepPrefix);
  if (name.compare(0, prefix, kStepPrefix) != 0 || name.size() == prefix) return std::nullopt;
  if (name.size() - prefix > 18) return std::nullopt;
  for (size_t i = prefix; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  }
  return std::stoll(name.substr(prefix));
}

void validate_state(const CheckpointState& state) {
  if (state.step < 0) throw DataError("checkpoint step must be >= 0, got " + std::to_string(state.step));
  for (const auto& [group, tensors] : state.tensor_groups) {
    check_checkpoint_name(group, "tensor group");
    for (const auto& [name, t] : tensors) {
      if (name.empty() || !t.defined()) {
        throw DataError("checkpoint tensor group '" + group +
                        "' has an empty name or undefined "
                        "tensor '" +
                        name + "'");
      }
    }
  }
  for (const auto& entry : state.optimizer_blobs) check_checkpoint_name(entry.first, "optimizer");
  if (state.torch_rng &&
      (!state.torch_rng->defined() || state.torch_rng->dim() != 1 || state.torch_rng->scalar_type() != torch::kUInt8)) {
    throw DataError("checkpoint torch_rng must be a 1-D uint8 tensor (a generator state)");
  }
}

// The manifest of `state`, without the file list.
Manifest describe(const CheckpointState& state) {
  Manifest m;
  const auto now = std::chrono::system_clock::now();
  m.step = state.step;
  m.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  m.created_utc = format_utc(now, "%Y-%m-%dT%H:%M:%SZ");
  for (const auto& [group, tensors] : state.tensor_groups) {
    auto& names = m.tensor_groups[group];
    for (const auto& entry : tensors) names.push_back(entry.first);
  }
  for (const auto& entry : state.optimizer_blobs) m.optimizers.push_back(entry.first);
  m.torch_rng = state.torch_rng.has_value();
  for (const auto& entry : state.std_rngs) m.rng_engines.push_back(entry.first);
  m.extra = state.extra;
  return m;
}

// Streams one tensor group as a torch archive straight into `file` (no in-memory copy).
void write_group(const std::map<std::string, torch::Tensor>& tensors, DurableFile& file) {
  torch::serialize::OutputArchive archive;
  for (const auto& [name, t] : tensors) archive.write(name, t.detach(), /*is_buffer=*/true);
  try {
    archive.save_to([&file](const void* data, size_t n) { return file.write_some(data, n); });
  } catch (const c10::Error& e) {
    throw DataError(std::string("cannot serialise a checkpoint tensor group: ") + e.what_without_backtrace());
  }
}

std::string rng_bytes(const CheckpointState& state) {
  std::vector<uint8_t> torch_state;
  if (state.torch_rng) {
    const torch::Tensor t = state.torch_rng->contiguous();
    torch_state.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  }
  std::ostringstream os;
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(torch_state, state.std_rngs);
  }
  return os.str();
}

template <class Archive>
void write_manifest_to(Archive& ar, const Manifest& m) {
  ar(cereal::make_nvp("magic", std::string(kManifestMagic)), cereal::make_nvp("version", kManifestVersion),
     cereal::make_nvp("manifest", m));
}

std::string manifest_bytes(const Manifest& m, bool json) {
  std::ostringstream os;
  if (json) {
    cereal::JSONOutputArchive ar(os);
    write_manifest_to(ar, m);
  } else {
    cereal::PortableBinaryOutputArchive ar(os);
    write_manifest_to(ar, m);
  }
  if (json) os << "\n";
  return os.str();
}

Manifest read_manifest(const fs::path& dir) {
  const fs::path path = dir / kManifestBin;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw DataError("checkpoint " + dir.string() + " has no " + kManifestBin + " (incomplete or half-written)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("cannot open", path);
  try {
    cereal::PortableBinaryInputArchive ar(in);
    std::string magic;
    uint32_t version = 0;
    ar(magic);
    if (magic != kManifestMagic) throw DataError(path.string() + " is not a Troupe checkpoint manifest");
    ar(version);
    if (version != kManifestVersion) {
      throw DataError(path.string() + " has manifest version " + std::to_string(version) +
                      "; this build reads version " + std::to_string(kManifestVersion));
    }
    Manifest m;
    ar(m);
    return m;
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {  // cereal::Exception, or bad_alloc on a garbage length
    throw DataError(path.string() + " is unreadable: " + e.what());
  }
}

// Throws DataError unless `name` is a plain file name (a crafted manifest must not escape dir).
void check_file_name(const fs::path& dir, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw DataError("checkpoint " + dir.string() + " manifest lists a bad file name '" + name + "'");
  }
}

// Every listed file exists with the listed size; DataError naming the first that does not.
void check_sizes(const fs::path& dir, const Manifest& m) {
  for (const auto& f : m.files) {
    check_file_name(dir, f.name);
    std::error_code ec;
    const auto size = fs::file_size(dir / f.name, ec);
    if (ec) throw DataError("checkpoint file " + (dir / f.name).string() + " is missing");
    if (size != f.bytes) {
      throw DataError("checkpoint file " + (dir / f.name).string() + " has " + std::to_string(size) +
                      " bytes; the manifest says " + std::to_string(f.bytes) + " (truncated or overwritten)");
    }
  }
}

std::string read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("cannot open", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_errno("cannot read", path);
  return bytes;
}

// The bytes of manifest entry `name`, after checking its size and CRC-32.
std::string read_verified(const fs::path& dir, const Manifest& m, const std::string& name) {
  auto f = std::find_if(m.files.begin(), m.files.end(), [&](const ManifestFile& x) { return x.name == name; });
  if (f == m.files.end()) {
    throw DataError("checkpoint " + dir.string() + " manifest does not list file " + name);
  }
  const fs::path path = dir / name;
  std::string bytes = read_whole_file(path);
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  if (bytes.size() != f->bytes || crc.checksum() != f->crc32) {
    char detail[96];
    std::snprintf(detail, sizeof detail, "%zu bytes, CRC-32 %08x; the manifest says %llu bytes, %08x", bytes.size(),
                  crc.checksum(), static_cast<unsigned long long>(f->bytes), f->crc32);
    throw DataError("checkpoint file " + path.string() + " is corrupted: " + detail);
  }
  return bytes;
}

std::map<std::string, torch::Tensor> parse_group(const std::string& bytes, const std::vector<std::string>& names,
                                                 const fs::path& path) {
  std::map<std::string, torch::Tensor> tensors;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    for (const auto& name : names) {
      torch::Tensor t;
      if (!archive.try_read(name, t, /*is_buffer=*/true)) {
        throw DataError("checkpoint file " + path.string() + " lacks tensor '" + name + "'");
      }
      tensors[name] = t;
    }
  } catch (const c10::Error& e) {
    throw DataError("checkpoint file " + path.string() +
                    " is not a readable torch archive: " + e.what_without_backtrace());
  }
  return tensors;
}

void parse_rng(const std::string& bytes, const Manifest& m, const fs::path& path, CheckpointState& state) {
  std::vector<uint8_t> torch_state;
  try {
    std::istringstream is(bytes);
    cereal::PortableBinaryInputArchive ar(is);
    ar(torch_state, state.std_rngs);
  } catch (const std::exception& e) {
    throw DataError("checkpoint file " + path.string() + " is unreadable: " + e.what());
  }
  if (m.torch_rng != !torch_state.empty() || state.std_rngs.size() != m.rng_engines.size()) {
    throw DataError("checkpoint file " + path.string() + " does not hold the RNG states its manifest lists");
  }
  if (m.torch_rng) {
    state.torch_rng = torch::tensor(torch::ArrayRef<uint8_t>(torch_state), torch::kUInt8);
  }
}

}  // namespace

void CheckpointOptions::validate() const {
  if (root.empty()) throw ConfigError("checkpoint root must not be empty");
  if (keep_last < 0) throw ConfigError("checkpoint keep_last must be >= 0 (0 keeps all)");
}

CheckpointManager::CheckpointManager(CheckpointOptions options) : options_(std::move(options)) { options_.validate(); }

fs::path CheckpointManager::step_dir(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "%s%08lld", kStepPrefix, static_cast<long long>(step));
  return options_.root / name;
}

fs::path CheckpointManager::save(const CheckpointState& state) {
  validate_state(state);
  const fs::path final_dir = step_dir(state.step);
  const fs::path tmp = options_.root / (kTmpPrefix + final_dir.filename().string() + pid_suffix());
  try {
    fs::create_directories(options_.root);
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    write_checkpoint_dir(state, tmp);
    publish(tmp, final_dir);
    write_latest(final_dir.filename().string());
  } catch (const fs::filesystem_error& e) {
    discard(tmp);
    throw IoError(std::string("checkpoint save failed: ") + e.what());
  } catch (...) {
    discard(tmp);
    throw;
  }
  prune(state.step);
  return final_dir;
}

void CheckpointManager::write_checkpoint_dir(const CheckpointState& state, const fs::path& dir) const {
  Manifest m = describe(state);
  auto finish = [&](DurableFile& file, const fs::path& path) {
    m.files.push_back(file.finish());
    core::progress_tick();  // a long save is work, not a hang (distributed/heartbeat.h)
    if (options_.on_file_written) options_.on_file_written(path);
  };
  for (const auto& [group, tensors] : state.tensor_groups) {
    const fs::path path = dir / (group + ".pt");
    DurableFile file(path);
    write_group(tensors, file);
    finish(file, path);
  }
  for (const auto& [name, blob] : state.optimizer_blobs) {
    const fs::path path = dir / (name + ".optim.pt");
    DurableFile file(path);
    file.write(blob);
    finish(file, path);
  }
  if (state.torch_rng || !state.std_rngs.empty()) {
    DurableFile file(dir / kRngFile);
    file.write(rng_bytes(state));
    finish(file, dir / kRngFile);
  }
  // The JSON copy is for people and is not listed; manifest.bin, written last, commits the rest.
  for (const char* name : {kManifestJson, kManifestBin}) {
    DurableFile file(dir / name);
    file.write(manifest_bytes(m, name == kManifestJson));
    file.finish();
    if (options_.on_file_written) options_.on_file_written(dir / name);
  }
  fsync_dir(dir);
}

void CheckpointManager::publish(const fs::path& tmp_dir, const fs::path& final_dir) const {
  if (::rename(tmp_dir.c_str(), final_dir.c_str()) == 0) {
    fsync_dir(options_.root);
    return;
  }
  if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("cannot rename into place", tmp_dir);
  // step_N exists: swap the two directories atomically, then delete the old one (now in tmp_dir).
  if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(options_.root);
    fs::remove_all(tmp_dir);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) throw_errno("cannot exchange", final_dir);
  // No RENAME_EXCHANGE on this file system: two renames, with a moment without step_N.
  const fs::path old =
      options_.root / (kTmpPrefix + std::string("replaced-") + final_dir.filename().string() + pid_suffix());
  fs::remove_all(old);
  fs::rename(final_dir, old);
  fs::rename(tmp_dir, final_dir);
  fsync_dir(options_.root);
  fs::remove_all(old);
}

void CheckpointManager::write_latest(const std::string& dir_name) const {
  const fs::path tmp = options_.root / (kTmpPrefix + std::string("latest") + pid_suffix());
  const fs::path latest = options_.root / "latest";
  DurableFile file(tmp);
  file.write(dir_name + "\n");
  file.finish();
  if (::rename(tmp.c_str(), latest.c_str()) != 0) throw_errno("cannot rename into place", tmp);
  fsync_dir(options_.root);
  if (options_.on_file_written) options_.on_file_written(latest);
}

std::optional<std::string> CheckpointManager::latest_hint() const {
  std::ifstream in(options_.root / "latest");
  std::string name;
  if (!in || !std::getline(in, name)) return std::nullopt;
  return name;
}

std::vector<std::pair<int64_t, fs::path>> CheckpointManager::step_dirs() const {
  std::vector<std::pair<int64_t, fs::path>> dirs;
  std::error_code ec;
  if (!fs::is_directory(options_.root, ec)) return dirs;
  for (const auto& entry : fs::directory_iterator(options_.root, ec)) {
    std::error_code entry_ec;
    if (!entry.is_directory(entry_ec)) continue;
    if (auto step = parse_step_name(entry.path().filename().string())) {
      dirs.emplace_back(*step, entry.path());
    }
  }
  if (ec) throw IoError("checkpoint: cannot list " + options_.root.string() + ": " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<int64_t> CheckpointManager::complete_steps() const {
  std::vector<int64_t> steps;
  for (const auto& [step, dir] : step_dirs()) {
    try {
      const Manifest m = read_manifest(dir);
      check_sizes(dir, m);
      if (m.step == step) steps.push_back(step);
    } catch (const DataError&) {
      // incomplete or broken: not listed
    }
  }
  return steps;
}

CheckpointState CheckpointManager::load(const fs::path& dir) const {
  const Manifest m = read_manifest(dir);
  const auto named_step = parse_step_name(dir.filename().string());
  if (named_step && *named_step != m.step) {
    throw DataError("checkpoint " + dir.string() + " holds step " + std::to_string(m.step));
  }
  check_sizes(dir, m);
  CheckpointState state;
  state.step = m.step;
  state.extra = m.extra;
  for (const auto& [group, names] : m.tensor_groups) {
    check_checkpoint_name(group, "tensor group");
    const std::string file = group + ".pt";
    state.tensor_groups[group] = parse_group(read_verified(dir, m, file), names, dir / file);
  }
  for (const auto& name : m.optimizers) {
    check_checkpoint_name(name, "optimizer");
    state.optimizer_blobs[name] = read_verified(dir, m, name + ".optim.pt");
  }
  if (m.torch_rng || !m.rng_engines.empty()) {
    parse_rng(read_verified(dir, m, kRngFile), m, dir / kRngFile, state);
  }
  return state;
}

std::optional<CheckpointState> CheckpointManager::load_latest() const {
  const auto dirs = step_dirs();
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    try {
      return load(it->second);
    } catch (const DataError& e) {
      spdlog::warn("skipping checkpoint {}: {}", it->second.string(), e.what());
    }
  }
  return std::nullopt;
}

// Pruning happens after a save has committed, so its failures are logged, not thrown.
void CheckpointManager::prune(int64_t just_saved) const {
  if (options_.keep_last == 0) return;
  std::vector<int64_t> complete;
  std::vector<std::pair<int64_t, fs::path>> dirs;
  try {
    complete = complete_steps();
    dirs = step_dirs();
  } catch (const IoError& e) {
    spdlog::warn("could not prune checkpoints: {}", e.what());
    return;
  }
  if (complete.size() <= static_cast<size_t>(options_.keep_last)) return;
  const int64_t oldest_kept = complete[complete.size() - options_.keep_last];
  for (const auto& [step, dir] : dirs) {
    if (step >= oldest_kept || step == just_saved) continue;
    // Rename first so a crash mid-delete leaves a .tmp-* entry, never a half-deleted step_N.
    const fs::path doomed =
        options_.root / (kTmpPrefix + std::string("pruned-") + dir.filename().string() + pid_suffix());
    std::error_code ec;
    fs::rename(dir, doomed, ec);
    if (!ec) fs::remove_all(doomed, ec);
    if (ec) spdlog::warn("could not prune checkpoint {}: {}", dir.string(), ec.message());
  }
}

void CheckpointManager::remove_stale_temporaries() const {
  std::error_code ec;
  if (!fs::is_directory(options_.root, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(options_.root, ec)) {
    if (entry.path().filename().string().rfind(kTmpPrefix, 0) == 0) stale.push_back(entry.path());
  }
  if (ec) throw IoError("checkpoint: cannot list " + options_.root.string() + ": " + ec.message());
  for (const auto& path : stale) {
    fs::remove_all(path, ec);
    if (ec) throw IoError("checkpoint: cannot remove " + path.string() + ": " + ec.message());
  }
}

}  // namespace troupe::core
