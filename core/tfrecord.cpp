// Implementation of core/tfrecord.h.
#include "core/tfrecord.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "core/errors.h"

namespace troupe::core {

namespace {

// The byte-at-a-time table of the reflected Castagnoli polynomial (0x1EDC6F41 reversed). ~1 GB/s is plenty here:
// event records are tens to thousands of bytes.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    table[i] = crc;
  }
  return table;
}

constexpr auto kCrc32cTable = make_crc32c_table();

template <typename T>
void append_le(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <typename T>
T read_le(std::string_view in, size_t pos) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<uint8_t>(in[pos + i])) << (8 * i);
  return value;
}

std::string read_whole_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("cannot open " + file.string() + ": " + std::strerror(errno));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char c : data) crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(c)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string tfrecord_frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  append_le<uint64_t>(out, data.size());
  append_le<uint32_t>(out, mask_crc(crc32c(out)));
  out.append(data);
  append_le<uint32_t>(out, mask_crc(crc32c(data)));
  return out;
}

TfRecordWriter::TfRecordWriter(const std::filesystem::path& file) : path_(file) {
  file_ = std::fopen(file.c_str(), "wbx");  // x: fail if it exists, never clobber another writer's file
  if (file_ == nullptr) throw IoError("cannot create " + file.string() + ": " + std::strerror(errno));
}

TfRecordWriter::~TfRecordWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

TfRecordWriter::TfRecordWriter(TfRecordWriter&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}

void TfRecordWriter::append(std::string_view data) {
  if (file_ == nullptr) throw IoError("append to closed event file " + path_.string());
  const std::string record = tfrecord_frame(data);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw IoError("cannot write " + path_.string() + ": " + std::strerror(errno));
}

void TfRecordWriter::flush() {
  if (file_ != nullptr && std::fflush(file_) != 0)
    throw IoError("cannot flush " + path_.string() + ": " + std::strerror(errno));
}

void TfRecordWriter::close() {
  if (file_ == nullptr) return;
  std::FILE* f = std::exchange(file_, nullptr);
  if (std::fclose(f) != 0) throw IoError("cannot close " + path_.string() + ": " + std::strerror(errno));
}

std::optional<std::string> read_first_tfrecord(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError("cannot open " + file.string() + ": " + std::strerror(errno));
  std::string header(12, '\0');
  if (!in.read(header.data(), 12)) return std::nullopt;
  const auto length = read_le<uint64_t>(header, 0);
  if (mask_crc(crc32c(std::string_view(header).substr(0, 8))) != read_le<uint32_t>(header, 8))
    throw DataError(file.string() + ": the first record's length CRC-32C does not match");
  constexpr uint64_t kMaxFirstRecord = 1 << 20;  // a file header, not a payload: refuse to allocate for garbage
  if (length > kMaxFirstRecord) return std::nullopt;
  std::string rest(length + 4, '\0');
  if (!in.read(rest.data(), static_cast<std::streamsize>(rest.size()))) return std::nullopt;
  const std::string_view data = std::string_view(rest).substr(0, length);
  if (mask_crc(crc32c(data)) != read_le<uint32_t>(rest, length))
    throw DataError(file.string() + ": the first record's data CRC-32C does not match");
  return std::string(data);
}

std::vector<std::string> read_tfrecords(const std::filesystem::path& file, bool allow_partial_tail) {
  const std::string bytes = read_whole_file(file);
  const std::string_view in(bytes);
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < in.size()) {
    const auto where = [&] { return file.string() + ": record at byte " + std::to_string(pos); };
    const bool header_complete = in.size() - pos >= 16;  // the smallest record: an empty one
    const uint64_t length = header_complete ? read_le<uint64_t>(in, pos) : 0;
    if (!header_complete || length > in.size() - pos - 16) {
      if (allow_partial_tail) break;
      throw DataError(where() + " is truncated (" + std::to_string(in.size() - pos) + " bytes left)");
    }
    if (mask_crc(crc32c(in.substr(pos, 8))) != read_le<uint32_t>(in, pos + 8))
      throw DataError(where() + ": the length's CRC-32C does not match");
    const std::string_view data = in.substr(pos + 12, length);
    if (mask_crc(crc32c(data)) != read_le<uint32_t>(in, pos + 12 + length))
      throw DataError(where() + ": the data's CRC-32C does not match");
    records.emplace_back(data);
    pos += 16 + length;
  }
  return records;
}

}  // namespace troupe::core
