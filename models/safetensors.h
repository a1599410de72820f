// The safetensors file format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// (name -> {dtype, shape, data_offsets}, optional "__metadata__"), then the raw little-endian C-contiguous
// tensor bytes. Reads and writes CPU tensors with full validation; not memory-mapped, not sharded
// (model.safetensors.index.json: models/safetensors_shards.h), and no F8/U16/U32/U64 dtypes (torch 1.13 has no such
// tensors).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace troupe::models {

// Named tensors in order, the shape every state-dict-like function here takes and returns.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The header's description of one tensor.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // as written in the file: "F32", "BF16", "I64", "BOOL", ...
  at::ScalarType scalar_type;   // the torch type it loads as
  std::vector<int64_t> shape;   // [] for a 0-d tensor
  uint64_t begin = 0, end = 0;  // byte range within the data buffer (after the header)
};

// A validated header: every entry checked against the file size, the buffer fully covered.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;        // in header order
  std::map<std::string, std::string> metadata;  // "__metadata__", empty when absent
  uint64_t data_start = 0;                      // file offset of the data buffer (8 + N)
  uint64_t data_size = 0;                       // bytes in the data buffer
};

// A loaded file: owning, contiguous CPU tensors.
struct SafetensorsFile {
  std::filesystem::path path;
  NamedTensors tensors;  // in header order
  std::map<std::string, std::string> metadata;

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // The tensor called `name`; DataError naming the file when absent.
  const at::Tensor& get(const std::string& name) const;
};

// Writes `tensors` (any device, layout or stride; copied to contiguous CPU one at a time, so peak extra
// memory is one tensor) in the given order, with `metadata` as "__metadata__" (omitted when empty). The
// header is space-padded so the data starts 8-byte aligned. Atomic: a temp file beside `path`, fsync, rename.
// DataError for duplicate, empty or reserved ("__metadata__") names and unsupported dtypes; IoError on I/O.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates the header only (no tensor data is read). DataError naming the file (and the tensor)
// for: a header length beyond the file or over 100 MB, JSON that is invalid or not an object, an unknown
// dtype, a bad shape, data_offsets that are not [begin, end] with begin <= end inside the buffer, a byte
// count that disagrees with shape x dtype, overlaps, gaps or uncovered bytes, and duplicate names.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Reads the header (validated as above) and every tensor.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

// "F32" for at::kFloat, etc.; DataError for a type safetensors (or this reader) does not support.
std::string safetensors_dtype(at::ScalarType type);

}  // namespace troupe::models
