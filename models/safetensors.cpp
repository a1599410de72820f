// Implementation of models/safetensors.h: header parsing and validation, tensor reads with pread, and a
// streaming atomic writer.
#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; this host is not");

namespace troupe::models {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps the header's key order

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
};
constexpr std::array<DtypeInfo, 10> kDtypes{{{"F64", at::kDouble},
                                             {"F32", at::kFloat},
                                             {"F16", at::kHalf},
                                             {"BF16", at::kBFloat16},
                                             {"I64", at::kLong},
                                             {"I32", at::kInt},
                                             {"I16", at::kShort},
                                             {"I8", at::kChar},
                                             {"U8", at::kByte},
                                             {"BOOL", at::kBool}}};

[[noreturn]] void bad(const fs::path& path, const std::string& what) { throw DataError(path.string() + ": " + what); }

[[noreturn]] void bad_tensor(const fs::path& path, const std::string& name, const std::string& what) {
  throw DataError(path.string() + ": tensor '" + name + "': " + what);
}

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Fd open_for_read(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open safetensors file " + path.string() + ": " + std::strerror(errno));
  return Fd(fd);
}

// Reads exactly `size` bytes at `offset`; DataError when the file ends first.
void read_exact(const Fd& fd, const fs::path& path, uint64_t offset, void* out, uint64_t size) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd.get(), p, std::min<uint64_t>(size, 1ull << 30), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("cannot read " + path.string() + ": " + std::strerror(errno));
    if (n == 0) bad(path, "file ends early (truncated?)");
    p += n, offset += static_cast<uint64_t>(n), size -= static_cast<uint64_t>(n);
  }
}

void write_all(int fd, const fs::path& path, const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, std::min<size_t>(size, 1ull << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("cannot write " + path.string() + ": " + std::strerror(errno));
    p += n, size -= static_cast<size_t>(n);
  }
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Top-level keys in order, for duplicate detection (nlohmann silently keeps one of two equal keys).
Json parse_header_json(const fs::path& path, const std::string& text, std::vector<std::string>& keys) {
  Json::parser_callback_t record = [&keys](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key) keys.push_back(parsed.get<std::string>());
    return true;
  };
  try {
    return Json::parse(text, record);
  } catch (const Json::exception& e) {
    bad(path, "header is not valid JSON: " + std::string(e.what()));
  }
}

std::map<std::string, std::string> parse_metadata(const fs::path& path, const Json& value) {
  if (!value.is_object()) bad(path, "__metadata__ must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) bad(path, "__metadata__." + key + " must be a string");
    out[key] = v.get<std::string>();
  }
  return out;
}

SafetensorsEntry parse_entry(const fs::path& path, const std::string& name, const Json& value, uint64_t data_size) {
  if (!value.is_object()) bad_tensor(path, name, "expected an object with dtype, shape and data_offsets");
  SafetensorsEntry e;
  e.name = name;
  if (!value.contains("dtype") || !value["dtype"].is_string()) bad_tensor(path, name, "missing or non-string dtype");
  e.dtype = value["dtype"].get<std::string>();
  const DtypeInfo* info = find_dtype(e.dtype);
  if (info == nullptr) bad_tensor(path, name, "unknown or unsupported dtype '" + e.dtype + "'");
  e.scalar_type = info->type;
  if (!value.contains("shape") || !value["shape"].is_array()) bad_tensor(path, name, "shape must be an array");
  uint64_t numel = 1;
  // The product of the non-zero dimensions: an empty tensor holds no bytes, but torch lays out its strides from the
  // other dimensions, and [0, 2^62, 2^62] overflows int64 there (c10::Error "Stride calculation overflowed", found by
  // fuzz/fuzz_safetensors).
  int64_t extent = 1;
  for (const auto& dim : value["shape"]) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < 0) {
      bad_tensor(path, name, "shape " + value["shape"].dump() + " must hold non-negative integers");
    }
    e.shape.push_back(dim.get<int64_t>());
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(e.shape.back()), &numel) ||
        __builtin_mul_overflow(extent, std::max<int64_t>(e.shape.back(), 1), &extent)) {
      bad_tensor(path, name, "shape " + value["shape"].dump() + " overflows");
    }
  }
  const Json* offsets = value.contains("data_offsets") ? &value["data_offsets"] : nullptr;
  if (offsets == nullptr || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    bad_tensor(path, name, "data_offsets must be [begin, end], two non-negative integers");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) bad_tensor(path, name, range + " has begin > end");
  if (e.end > data_size) {
    bad_tensor(path, name, range + " ends beyond the data buffer (" + std::to_string(data_size) + " bytes)");
  }
  const uint64_t element = c10::elementSize(e.scalar_type);
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, element, &bytes) || bytes != e.end - e.begin) {
    bad_tensor(path, name,
               "size mismatch: " + range + " holds " + std::to_string(e.end - e.begin) + " bytes but shape " +
                   value["shape"].dump() + " x " + e.dtype + " needs " + std::to_string(numel) + " x " +
                   std::to_string(element));
  }
  return e;
}

// The spec requires the tensors to tile the buffer exactly: sorted by offset, each begins where the
// previous ended, the first at 0 and the last at the end. Empty tensors may sit anywhere on a boundary.
void check_coverage(const fs::path& path, const std::vector<SafetensorsEntry>& entries, uint64_t data_size) {
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* e : sorted) {
    if (e->begin < covered) {
      bad_tensor(path, e->name,
                 "overlaps tensor '" + previous->name + "' (bytes " + std::to_string(e->begin) + ".." +
                     std::to_string(covered) + " of the data buffer)");
    }
    if (e->begin > covered) {
      bad_tensor(path, e->name,
                 "gap in the data buffer: bytes " + std::to_string(covered) + ".." + std::to_string(e->begin) +
                     " belong to no tensor");
    }
    covered = e->end;
    if (e->end > e->begin) previous = e;
  }
  if (covered != data_size) {
    bad(path, "data buffer not fully covered: tensors end at byte " + std::to_string(covered) + " of " +
                  std::to_string(data_size) + " (trailing bytes belong to no tensor)");
  }
}

SafetensorsHeader read_header(const Fd& fd, const fs::path& path) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw IoError("cannot stat " + path.string() + ": " + std::strerror(errno));
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) bad(path, "file is " + std::to_string(file_size) + " bytes, too short for a safetensors header");
  unsigned char prefix[8];
  read_exact(fd, path, 0, prefix, 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderBytes)
    bad(path, "header length " + std::to_string(n) + " is absurd (over 100 MB): not a safetensors file?");
  if (n > file_size - 8) {
    bad(path,
        "header length " + std::to_string(n) + " exceeds the file size (" + std::to_string(file_size) + " bytes)");
  }
  std::string text(n, '\0');
  read_exact(fd, path, 8, text.data(), n);
  std::vector<std::string> keys;
  const Json root = parse_header_json(path, text, keys);
  if (!root.is_object()) bad(path, "header is not a JSON object");
  std::set<std::string> seen;
  for (const auto& key : keys) {
    if (!seen.insert(key).second) bad_tensor(path, key, "duplicate name in the header");
  }
  SafetensorsHeader header;
  header.data_start = 8 + n;
  header.data_size = file_size - header.data_start;
  for (const auto& [name, value] : root.items()) {
    if (name == kMetadataKey) {
      header.metadata = parse_metadata(path, value);
    } else {
      header.entries.push_back(parse_entry(path, name, value, header.data_size));
    }
  }
  check_coverage(path, header.entries, header.data_size);
  return header;
}

}  // namespace

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

const at::Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  bad_tensor(path, name, "no such tensor in the file");
}

std::string safetensors_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw DataError(std::string("safetensors: unsupported tensor dtype ") + c10::toString(type));
}

SafetensorsHeader read_safetensors_header(const fs::path& path) {
  const Fd fd = open_for_read(path);
  return read_header(fd, path);
}

SafetensorsFile load_safetensors(const fs::path& path) {
  const Fd fd = open_for_read(path);
  SafetensorsHeader header = read_header(fd, path);
  SafetensorsFile file;
  file.path = path;
  file.metadata = std::move(header.metadata);
  file.tensors.reserve(header.entries.size());
  for (const auto& e : header.entries) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.scalar_type));
    read_exact(fd, path, header.data_start + e.begin, t.data_ptr(), e.end - e.begin);
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

namespace {

// The header text, space-padded so 8 + size is a multiple of 8.
std::string build_header(const fs::path& path, const NamedTensors& tensors,
                         const std::map<std::string, std::string>& metadata) {
  Json root = Json::object();
  if (!metadata.empty()) root[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& entry : tensors) {
    // Not a structured binding: the lambda below captures these, which clang 14 (the fuzz build) cannot do.
    const std::string& name = entry.first;
    const at::Tensor& t = entry.second;
    if (name.empty() || name == kMetadataKey) bad_tensor(path, name, "reserved or empty tensor name");
    if (root.contains(name)) bad_tensor(path, name, "duplicate tensor name");
    if (!t.defined()) bad_tensor(path, name, "undefined tensor");
    const std::string dtype = [&] {
      try {
        return safetensors_dtype(t.scalar_type());
      } catch (const DataError& e) {
        bad_tensor(path, name, e.what());
      }
    }();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    root[name] = Json{{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = root.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void save_safetensors(const fs::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, tensors, metadata);
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw IoError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  try {
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(uint64_t{header.size()} >> (8 * i));
    write_all(fd.get(), tmp, prefix, 8);
    write_all(fd.get(), tmp, header.data(), header.size());
    for (const auto& [name, t] : tensors) {
      // One contiguous CPU copy at a time (a no-op for tensors already contiguous on the CPU).
      const at::Tensor c = t.detach().to(torch::kCPU).contiguous();
      write_all(fd.get(), tmp, c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
    }
    if (::fsync(fd.get()) != 0) throw IoError("cannot fsync " + tmp.string() + ": " + std::strerror(errno));
    if (::close(fd.release()) != 0) throw IoError("cannot close " + tmp.string() + ": " + std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

}  // namespace troupe::models
