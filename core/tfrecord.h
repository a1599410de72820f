// TFRecord files, the framing of TensorBoard's event files: each record is
//   uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data), all little-endian,
// with CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) masked as ((crc >> 15) | (crc << 17)) + 0xa282ead8.
// Not a TensorFlow dependency and not a compressed-record reader (no GZIP/ZLIB record options).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::core {

// CRC-32C of `data` (iSCSI polynomial): crc32c("123456789") == 0xE3069283, crc32c("") == 0.
uint32_t crc32c(std::string_view data);
// TFRecord's masking of a CRC (so that a CRC of data holding CRCs is not trivially related to them).
uint32_t mask_crc(uint32_t crc);

// The bytes of one record around `data` (16 bytes of framing + data).
std::string tfrecord_frame(std::string_view data);

// Appends records to a file it creates (IoError naming the file if it exists or cannot be written). Each append is
// one fwrite; flush() hands buffered records to the OS (readers see whole records only after it).
// Movable, not copyable; not thread-safe.
class TfRecordWriter {
 public:
  explicit TfRecordWriter(const std::filesystem::path& file);
  ~TfRecordWriter();
  TfRecordWriter(TfRecordWriter&& other) noexcept;
  TfRecordWriter& operator=(TfRecordWriter&&) = delete;
  TfRecordWriter(const TfRecordWriter&) = delete;

  void append(std::string_view data);
  void flush();  // fflush: into the OS page cache, no fsync
  void close();  // idempotent; afterwards append throws IoError
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Every record of a TFRecord file, each checked against both CRCs. DataError naming the file and the record's byte
// offset on a bad CRC or a truncated record (a file still being written can end in a partial record: pass
// allow_partial_tail to stop before it instead).
std::vector<std::string> read_tfrecords(const std::filesystem::path& file, bool allow_partial_tail = false);
// The first record only, CRC-checked, reading no further; nullopt when the file holds no whole first record.
// IoError if it cannot be opened, DataError on a CRC mismatch.
std::optional<std::string> read_first_tfrecord(const std::filesystem::path& file);

}  // namespace troupe::core
