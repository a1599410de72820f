// Token files: a flat little-endian array of token ids (uint16 when the vocabulary fits, else uint32) plus a
// JSON sidecar "<file>.json" describing it. The data part is exactly nanoGPT's train.bin, so
// numpy.memmap(path, dtype=np.uint16) reads it. Writing and memory-mapped reading only; no tokenisation.
//
// Sidecar (version 1):
//   {"format": "troupe-tokens", "version": 1, "dtype": "uint16", "count": 123456, "vocab_size": 50257,
//    "documents": 42, "separator": 50256, "tokenizer": "gpt2", "sources": ["a.txt", ...]}
// "separator" is the id appended after every document, or null.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace troupe::tokenizers {

struct TokenFileInfo {
  std::string dtype;  // "uint16" or "uint32"
  uint64_t count = 0;
  int64_t vocab_size = 0;
  uint64_t documents = 0;
  std::optional<int64_t> separator;
  std::string tokenizer;
  std::vector<std::string> sources;

  int width() const { return dtype == "uint16" ? 2 : 4; }
};

// "uint16" when every id < vocab_size fits in 16 bits, else "uint32".
std::string token_dtype_for_vocab(int64_t vocab_size);

// Streams ids into "<path>.tmp"; finish() fsyncs, renames it to `path` and writes the sidecar. Destroying an
// unfinished writer removes the temp file, so a failed run never leaves a half-written token file behind.
class TokenFileWriter {
 public:
  TokenFileWriter(std::filesystem::path path, int64_t vocab_size, std::string tokenizer_name);
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // Appends ids; DataError when one is outside [0, vocab_size).
  void append(const std::vector<int>& ids);
  // Counts one finished document and appends the separator, if any.
  void end_document();
  void set_separator(std::optional<int> id) { info_.separator = id; }
  void add_source(const std::string& source) { info_.sources.push_back(source); }

  TokenFileInfo finish();
  uint64_t count() const { return info_.count; }

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  std::ofstream out_;
  TokenFileInfo info_;
  std::vector<char> buffer_;
  bool finished_ = false;
};

// Read-only memory map of a token file, validated against its sidecar (size == count * width).
class TokenFile {
 public:
  explicit TokenFile(const std::filesystem::path& path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  const TokenFileInfo& info() const { return info_; }
  uint64_t size() const { return info_.count; }
  int64_t operator[](uint64_t i) const;
  // Copies ids [begin, begin + n) into out (DataError when out of range).
  void read(uint64_t begin, uint64_t n, int64_t* out) const;

 private:
  std::filesystem::path path_;
  TokenFileInfo info_;
  const unsigned char* data_ = nullptr;
  size_t mapped_bytes_ = 0;
};

// Reads only the sidecar.
TokenFileInfo read_token_file_info(const std::filesystem::path& path);

}  // namespace troupe::tokenizers
