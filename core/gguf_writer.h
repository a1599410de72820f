// A GGUF v3 file writer (the llama.cpp / ggml model format): header, typed metadata key/values (scalars, strings and
// arrays), tensor infos and 32-byte aligned tensor data, with the F32, F16, BF16 and Q8_0 encodings bit-exact to
// ggml's reference conversions. Torch-free, and not a model converter: models/gguf_export.h maps a GPT onto it,
// tokenizers/gguf_vocab.h the tokenizer.
//
// Layout written (little-endian), as the GGUF spec and gguf-py's GGUFWriter:
//   "GGUF" u32 version=3 | u64 n_tensors | u64 n_kv | kv* | tensor_info* | pad to 32 | data (each tensor padded to 32)
//   kv          = string key | u32 value type | value     (array: u32 element type | u64 count | elements)
//   string      = u64 byte length | bytes (no terminator)
//   tensor_info = string name | u32 n_dims | u64 ne[n_dims] (innermost first) | u32 ggml type | u64 data offset
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <variant>
#include <vector>

namespace troupe::core {

// ggml_type values of the encodings written here (ggml.h / gguf-py GGMLQuantizationType).
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };
// "F32", "F16", "Q8_0", "BF16" (gguf-py's names).
const char* ggml_type_name(GgmlType type);
// Bytes of `n` values (n a multiple of 32 for Q8_0: 34 bytes per block of 32).
uint64_t ggml_type_bytes(GgmlType type, int64_t n);

inline constexpr int64_t kQ8BlockSize = 32;  // QK8_0
inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint32_t kGgufAlignment = 32;  // general.alignment (also gguf's default)

// Scalar conversions as ggml does them (round to nearest even; NaN stays NaN, bf16 NaN quieted as ggml).
uint16_t fp32_to_fp16(float x);
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float x);
// ggml's quantize_row_q8_0_ref over n values (n % 32 == 0): per block of 32, d = amax / 127 (stored as fp16),
// q = roundf(x * (1 / d)) (0 when d == 0). Appends n / 32 blocks of {fp16 d, int8 q[32]} to `out`.
void quantize_q8_0(const float* x, int64_t n, std::string& out);
// Encodes n fp32 values as `type` (appended to `out`).
void encode_ggml(GgmlType type, const float* x, int64_t n, std::string& out);

// One metadata value: a scalar, a string, or a homogeneous array (GGUF value types; arrays of arrays are not
// written by anything here).
using GgufValue = std::variant<uint32_t, int32_t, uint64_t, float, double, bool, std::string, std::vector<std::string>,
                               std::vector<float>, std::vector<int32_t>>;
struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

class GgufWriter {
 public:
  // ConfigError when `key` was added before (GGUF keys are unique) or is empty.
  void add(const std::string& key, GgufValue value);
  void add_all(const std::vector<GgufKeyValue>& kvs);
  bool has(const std::string& key) const;

  // Encodes and keeps a tensor (the copy is the encoded bytes). shape: outermost first, as torch ([rows, cols] for
  // a matrix); GGUF stores it reversed (ne[0] = cols). ConfigError for a duplicate name, an empty shape entry, or a
  // Q8_0 tensor whose rows are not a multiple of 32 long.
  void add_tensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type, const float* data);

  // Writes the file atomically (temp file + rename); adds general.alignment = 32 unless given. IoError naming the
  // path on failure.
  void write(const std::filesystem::path& path) const;

  size_t tensor_count() const { return tensors_.size(); }
  uint64_t data_bytes() const;  // encoded tensor bytes (without padding)

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;  // outermost first
    GgmlType type;
    std::string bytes;
  };
  void write_to(std::ofstream& f) const;  // the whole file (stream errors are checked by write())

  std::vector<GgufKeyValue> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace troupe::core
