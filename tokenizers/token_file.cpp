// Implementation of tokenizers/token_file.h: buffered little-endian writer with a temp-file-and-rename finish, and an
// mmap reader checked against the sidecar.
#include "tokenizers/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/errors.h"
#include "core/run_dir.h"

namespace troupe::tokenizers {
namespace fs = std::filesystem;

namespace {

fs::path sidecar_path(const fs::path& path) { return fs::path(path.string() + ".json"); }

constexpr size_t kWriteBuffer = 1 << 20;

}  // namespace

std::string token_dtype_for_vocab(int64_t vocab_size) { return vocab_size <= 65536 ? "uint16" : "uint32"; }

TokenFileWriter::TokenFileWriter(fs::path path, int64_t vocab_size, std::string tokenizer_name)
    : path_(std::move(path)), tmp_path_(path_.string() + ".tmp") {
  if (vocab_size <= 0) throw ConfigError("token file: vocab_size must be positive");
  info_.dtype = token_dtype_for_vocab(vocab_size);
  info_.vocab_size = vocab_size;
  info_.tokenizer = std::move(tokenizer_name);
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path());
  out_.open(tmp_path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw IoError("cannot create token file " + tmp_path_.string());
  buffer_.reserve(kWriteBuffer + 4096);
}

TokenFileWriter::~TokenFileWriter() {
  if (!finished_) {
    out_.close();
    std::error_code ec;
    fs::remove(tmp_path_, ec);
  }
}

void TokenFileWriter::append(const std::vector<int>& ids) {
  const int width = info_.width();
  for (int id : ids) {
    if (id < 0 || id >= info_.vocab_size) {
      throw DataError("token file " + path_.string() + ": id " + std::to_string(id) + " outside the vocabulary [0, " +
                      std::to_string(info_.vocab_size) + ")");
    }
    const auto v = static_cast<uint32_t>(id);  // little-endian, whatever the host (x86 is already LE)
    buffer_.push_back(static_cast<char>(v & 0xFF));
    buffer_.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (width == 4) {
      buffer_.push_back(static_cast<char>((v >> 16) & 0xFF));
      buffer_.push_back(static_cast<char>((v >> 24) & 0xFF));
    }
    if (buffer_.size() >= kWriteBuffer) {
      out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
      buffer_.clear();
    }
  }
  info_.count += ids.size();
  if (!out_) throw IoError("cannot write token file " + tmp_path_.string());
}

void TokenFileWriter::end_document() {
  ++info_.documents;
  if (info_.separator) append({static_cast<int>(*info_.separator)});
}

TokenFileInfo TokenFileWriter::finish() {
  out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  buffer_.clear();
  out_.flush();
  if (!out_) throw IoError("cannot write token file " + tmp_path_.string());
  out_.close();
  {
    const int fd = ::open(tmp_path_.c_str(), O_RDONLY);
    TROUPE_CHECK_POSIX(fd);
    const int rc = ::fsync(fd);
    ::close(fd);
    TROUPE_CHECK_POSIX(rc);
  }
  std::error_code ec;
  fs::rename(tmp_path_, path_, ec);
  if (ec) throw IoError("cannot rename " + tmp_path_.string() + " to " + path_.string() + ": " + ec.message());
  nlohmann::json meta = {{"format", "troupe-tokens"},
                         {"version", 1},
                         {"dtype", info_.dtype},
                         {"count", info_.count},
                         {"vocab_size", info_.vocab_size},
                         {"documents", info_.documents},
                         {"separator", info_.separator ? nlohmann::json(*info_.separator) : nlohmann::json()},
                         {"tokenizer", info_.tokenizer},
                         {"sources", info_.sources}};
  core::write_file_atomic(sidecar_path(path_), meta.dump(1) + "\n");
  finished_ = true;
  return info_;
}

TokenFileInfo read_token_file_info(const fs::path& path) {
  const fs::path meta_path = sidecar_path(path);
  std::ifstream in(meta_path);
  if (!in)
    throw IoError("cannot open token file sidecar " + meta_path.string() + " (written beside " + path.string() + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers out of range (found by fuzz/)
    throw DataError(meta_path.string() + ": invalid JSON: " + e.what());
  }
  auto fail = [&](const std::string& key, const std::string& what) -> void {
    throw DataError(meta_path.string() + ": key '" + key + "': " + what);
  };
  auto field_is = [&](const char* key, const nlohmann::json& want) {
    return meta.is_object() && meta.contains(key) && meta[key] == want;
  };
  if (!field_is("format", "troupe-tokens")) fail("format", "expected \"troupe-tokens\"");
  if (!field_is("version", 1)) fail("version", "unsupported version (this build reads 1)");
  // Integers only: nlohmann's get<int>() of a float is a plain cast, undefined beyond the target's range ("count":
  // 1.4e61 was a UBSan report, found by fuzz/fuzz_token_file), and get<uint64_t>() of -1 wraps.
  auto unsigned_field = [&](const char* key) -> uint64_t {
    const nlohmann::json& v = meta.at(key);
    if (!v.is_number_unsigned()) fail(key, "expected a non-negative integer, got " + v.dump());
    return v.get<uint64_t>();
  };
  auto signed_field = [&](const char* key) -> int64_t {
    const nlohmann::json& v = meta.at(key);
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX}))
      fail(key, "expected an integer, got " + v.dump());
    return v.get<int64_t>();
  };
  TokenFileInfo info;
  try {
    info.dtype = meta.at("dtype").get<std::string>();
    info.count = unsigned_field("count");
    info.vocab_size = signed_field("vocab_size");
    info.documents = meta.contains("documents") ? unsigned_field("documents") : 0;
    if (meta.contains("separator") && !meta["separator"].is_null()) info.separator = signed_field("separator");
    info.tokenizer = meta.value("tokenizer", "");
    if (meta.contains("sources")) info.sources = meta["sources"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(meta_path.string() + ": expected dtype, count, vocab_size: " + e.what());
  }
  if (info.dtype != "uint16" && info.dtype != "uint32") fail("dtype", "expected uint16 or uint32, got " + info.dtype);
  return info;
}

TokenFile::TokenFile(const fs::path& path) : path_(path), info_(read_token_file_info(path)) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw IoError("cannot open token file " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw IoError("cannot stat token file " + path.string());
  }
  const uint64_t expected = info_.count * static_cast<uint64_t>(info_.width());
  if (static_cast<uint64_t>(st.st_size) != expected) {
    ::close(fd);
    throw DataError("token file " + path.string() + " has " + std::to_string(st.st_size) +
                    " bytes but its sidecar says " + std::to_string(info_.count) + " " + info_.dtype + " ids (" +
                    std::to_string(expected) + " bytes): truncated or not finished");
  }
  mapped_bytes_ = static_cast<size_t>(expected);
  if (mapped_bytes_ > 0) {
    void* p = ::mmap(nullptr, mapped_bytes_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw IoError("cannot mmap token file " + path.string() + ": " + std::strerror(errno));
    }
    data_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
}

TokenFile::~TokenFile() {
  if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), mapped_bytes_);
}

int64_t TokenFile::operator[](uint64_t i) const {
  if (info_.width() == 2) {
    const unsigned char* p = data_ + i * 2;
    return p[0] | (p[1] << 8);
  }
  const unsigned char* p = data_ + i * 4;
  return static_cast<int64_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                              (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24));
}

void TokenFile::read(uint64_t begin, uint64_t n, int64_t* out) const {
  if (begin > info_.count || n > info_.count - begin) {
    throw DataError("token file " + path_.string() + ": read [" + std::to_string(begin) + ", " +
                    std::to_string(begin + n) + ") past its " + std::to_string(info_.count) + " ids");
  }
  for (uint64_t i = 0; i < n; ++i) out[i] = (*this)[begin + i];
}

}  // namespace troupe::tokenizers
