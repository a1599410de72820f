// Implementation of core/gguf_writer.h.
#include "core/gguf_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>

#include "core/errors.h"

namespace troupe::core {

namespace {

// GGUF metadata value types (gguf-py GGUFValueType).
enum class ValueType : uint32_t {
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kFloat64 = 12
};

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

class Out {
 public:
  explicit Out(std::ofstream& f) : f_(f) {}
  template <class T>
  void pod(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    f_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    at_ += sizeof(T);
  }
  void bytes(const std::string& s) {
    f_.write(s.data(), static_cast<std::streamsize>(s.size()));
    at_ += s.size();
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s);
  }
  void pad() {
    const uint64_t n = (kGgufAlignment - at_ % kGgufAlignment) % kGgufAlignment;
    bytes(std::string(n, '\0'));
  }

 private:
  std::ofstream& f_;
  uint64_t at_ = 0;
};

template <class T>
constexpr ValueType type_of() {
  if constexpr (std::is_same_v<T, uint32_t>) return ValueType::kUint32;
  if constexpr (std::is_same_v<T, int32_t>) return ValueType::kInt32;
  if constexpr (std::is_same_v<T, uint64_t>) return ValueType::kUint64;
  if constexpr (std::is_same_v<T, float>) return ValueType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return ValueType::kFloat64;
  if constexpr (std::is_same_v<T, bool>) return ValueType::kBool;
  return ValueType::kString;
}

void write_value(Out& out, const GgufValue& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out.pod(static_cast<uint32_t>(ValueType::kString));
          out.str(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.pod(static_cast<uint32_t>(ValueType::kBool));
          out.pod(static_cast<uint8_t>(v ? 1 : 0));
        } else if constexpr (std::is_arithmetic_v<T>) {
          out.pod(static_cast<uint32_t>(type_of<T>()));
          out.pod(v);
        } else {  // an array
          using E = typename T::value_type;
          out.pod(static_cast<uint32_t>(ValueType::kArray));
          out.pod(static_cast<uint32_t>(type_of<E>()));
          out.pod(static_cast<uint64_t>(v.size()));
          for (const auto& e : v) {
            if constexpr (std::is_same_v<E, std::string>) {
              out.str(e);
            } else {
              out.pod(e);
            }
          }
        }
      },
      value);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kBF16: return "BF16";
  }
  return "?";
}

uint64_t ggml_type_bytes(GgmlType type, int64_t n) {
  switch (type) {
    case GgmlType::kF32: return 4 * static_cast<uint64_t>(n);
    case GgmlType::kF16:
    case GgmlType::kBF16: return 2 * static_cast<uint64_t>(n);
    case GgmlType::kQ8_0: return static_cast<uint64_t>(n / kQ8BlockSize) * (2 + kQ8BlockSize);
  }
  return 0;
}

// ggml_compute_fp32_to_fp16 (the portable path; F16C's _cvtss_sh rounds the same way): round to nearest even,
// overflow to infinity, subnormals kept, NaN kept as a quiet NaN.
uint16_t fp32_to_fp16(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000U);
  const uint32_t abs = u & 0x7fffffffU;
  if (abs > 0x7f800000U) return static_cast<uint16_t>(sign | 0x7e00U);   // NaN
  if (abs >= 0x477ff000U) return static_cast<uint16_t>(sign | 0x7c00U);  // rounds to >= 65520: infinity
  if (abs < 0x38800000U) {                                               // below fp16's smallest normal: subnormal
    // value = abs_float * 2^24 units of 2^-24; round to nearest even on the integer.
    const uint32_t mant = (abs & 0x7fffffU) | 0x800000U;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 113 - exp + 13
    if (shift > 24) return sign;
    const uint32_t q = mant >> shift, rem = mant & ((1U << shift) - 1), half = 1U << (shift - 1);
    const uint32_t r = q + ((rem > half || (rem == half && (q & 1U))) ? 1U : 0U);
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t rebased = abs - (112U << 23);  // exponent 127 -> 15
  const uint32_t q = rebased >> 13, rem = rebased & 0x1fffU;
  const uint32_t r = q + ((rem > 0x1000U || (rem == 0x1000U && (q & 1U))) ? 1U : 0U);
  return static_cast<uint16_t>(sign | r);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000U) << 16;
  const uint32_t exp = (h >> 10) & 0x1fU, mant = h & 0x3ffU;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400U), static_cast<int>(exp) - 25);
  }
  uint32_t u = bits_of(v) | sign;
  std::memcpy(&v, &u, 4);
  return v;
}

// ggml_compute_fp32_to_bf16: NaN quieted (bit 6 set), otherwise round to nearest even.
uint16_t fp32_to_bf16(float x) {
  const uint32_t u = bits_of(x);
  if ((u & 0x7fffffffU) > 0x7f800000U) return static_cast<uint16_t>((u >> 16) | 64U);
  return static_cast<uint16_t>((u + (0x7fffU + ((u >> 16) & 1U))) >> 16);
}

void quantize_q8_0(const float* x, int64_t n, std::string& out) {
  if (n % kQ8BlockSize != 0)
    throw ConfigError("quantize_q8_0: " + std::to_string(n) + " values is not whole blocks of 32");
  for (int64_t b = 0; b < n; b += kQ8BlockSize) {
    float amax = 0.0F;
    for (int64_t j = 0; j < kQ8BlockSize; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0F;
    const float id = d != 0.0F ? 1.0F / d : 0.0F;
    const uint16_t dh = fp32_to_fp16(d);
    out.append(reinterpret_cast<const char*>(&dh), 2);
    for (int64_t j = 0; j < kQ8BlockSize; ++j)
      out.push_back(static_cast<char>(static_cast<int8_t>(std::roundf(x[b + j] * id))));
  }
}

void encode_ggml(GgmlType type, const float* x, int64_t n, std::string& out) {
  out.reserve(out.size() + ggml_type_bytes(type, n));
  switch (type) {
    case GgmlType::kF32: out.append(reinterpret_cast<const char*>(x), static_cast<size_t>(n) * 4); return;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == GgmlType::kF16 ? fp32_to_fp16(x[i]) : fp32_to_bf16(x[i]);
        out.append(reinterpret_cast<const char*>(&h), 2);
      }
      return;
    case GgmlType::kQ8_0: quantize_q8_0(x, n, out); return;
  }
}

void GgufWriter::add(const std::string& key, GgufValue value) {
  if (key.empty()) throw ConfigError("gguf: empty metadata key");
  if (has(key)) throw ConfigError("gguf: metadata key '" + key + "' added twice");
  kvs_.push_back({key, std::move(value)});
}

void GgufWriter::add_all(const std::vector<GgufKeyValue>& kvs) {
  for (const auto& kv : kvs) add(kv.key, kv.value);
}

bool GgufWriter::has(const std::string& key) const {
  return std::any_of(kvs_.begin(), kvs_.end(), [&](const GgufKeyValue& kv) { return kv.key == key; });
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                            const float* data) {
  for (const auto& t : tensors_) {
    if (t.name == name) throw ConfigError("gguf: tensor '" + name + "' added twice");
  }
  if (shape.empty() || std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d <= 0; }))
    throw ConfigError("gguf: tensor '" + name + "' has shape " + shape_text(shape) + "; need positive sizes");
  if (type == GgmlType::kQ8_0 && shape.back() % kQ8BlockSize != 0) {
    throw ConfigError("gguf: tensor '" + name + "' " + shape_text(shape) +
                      ": Q8_0 needs rows of a multiple of 32 values");
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  Tensor t{name, shape, type, {}};
  encode_ggml(type, data, n, t.bytes);
  tensors_.push_back(std::move(t));
}

uint64_t GgufWriter::data_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.bytes.size();
  return n;
}

void GgufWriter::write_to(std::ofstream& f) const {
  Out out(f);
  const bool alignment_given = has("general.alignment");
  out.bytes("GGUF");
  out.pod(kGgufVersion);
  out.pod(static_cast<uint64_t>(tensors_.size()));
  out.pod(static_cast<uint64_t>(kvs_.size() + (alignment_given ? 0 : 1)));
  for (const auto& kv : kvs_) {
    out.str(kv.key);
    write_value(out, kv.value);
  }
  if (!alignment_given) {
    out.str("general.alignment");
    write_value(out, GgufValue(kGgufAlignment));
  }
  uint64_t offset = 0;  // of each tensor's data from the start of the data section
  for (const auto& t : tensors_) {
    out.str(t.name);
    out.pod(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) out.pod(static_cast<uint64_t>(*it));
    out.pod(static_cast<uint32_t>(t.type));
    out.pod(offset);
    offset += (t.bytes.size() + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment;
  }
  out.pad();
  for (const auto& t : tensors_) {
    out.bytes(t.bytes);
    out.pad();
  }
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IoError("cannot write " + tmp.string() + ": " + std::strerror(errno));
    write_to(f);
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp, ec);
      throw IoError("writing " + tmp.string() + " failed: " + std::strerror(errno));
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw IoError("cannot move " + tmp.string() + " to " + path.string() + ": " + ec.message());
  }
}

}  // namespace troupe::core
