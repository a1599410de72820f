// Implementation of core/protobuf_wire.h.
#include "core/protobuf_wire.h"

#include <bit>
#include <cstring>

#include "core/errors.h"

namespace troupe::core::protobuf {

namespace {

template <typename T>
void append_little_endian(std::string& out, T value) {
  static_assert(std::endian::native == std::endian::little, "the encoder writes host order: little-endian only");
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.append(raw, sizeof(T));
}

uint64_t read_varint(std::string_view in, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= in.size()) throw DataError("protobuf: varint runs past the end at byte " + std::to_string(pos));
    const auto byte = static_cast<uint8_t>(in[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  throw DataError("protobuf: varint longer than 10 bytes ending at byte " + std::to_string(pos));
}

uint64_t read_fixed(std::string_view in, size_t& pos, size_t width) {
  if (in.size() - pos < width)
    throw DataError("protobuf: fixed field runs past the end at byte " + std::to_string(pos));
  uint64_t value = 0;
  std::memcpy(&value, in.data() + pos, width);
  pos += width;
  return value;
}

}  // namespace

void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void Encoder::add_key(uint32_t field, WireType type) {
  append_varint(out_, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
}

Encoder& Encoder::add_varint(uint32_t field, uint64_t value) {
  add_key(field, WireType::kVarint);
  append_varint(out_, value);
  return *this;
}

Encoder& Encoder::add_int64(uint32_t field, int64_t value) { return add_varint(field, static_cast<uint64_t>(value)); }

Encoder& Encoder::add_double(uint32_t field, double value) {
  add_key(field, WireType::kFixed64);
  append_little_endian(out_, value);
  return *this;
}

Encoder& Encoder::add_float(uint32_t field, float value) {
  add_key(field, WireType::kFixed32);
  append_little_endian(out_, value);
  return *this;
}

Encoder& Encoder::add_bytes(uint32_t field, std::string_view bytes) {
  add_key(field, WireType::kLengthDelimited);
  append_varint(out_, bytes.size());
  out_.append(bytes);
  return *this;
}

Encoder& Encoder::add_message(uint32_t field, const Encoder& message) { return add_bytes(field, message.bytes()); }

Encoder& Encoder::add_packed_doubles(uint32_t field, const std::vector<double>& values) {
  std::string packed;
  for (double v : values) append_little_endian(packed, v);
  return add_bytes(field, packed);
}

std::vector<Field> parse_fields(std::string_view message) {
  std::vector<Field> fields;
  size_t pos = 0;
  while (pos < message.size()) {
    const size_t start = pos;
    const uint64_t key = read_varint(message, pos);
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.type = static_cast<WireType>(key & 7);
    switch (f.type) {
      case WireType::kVarint: f.varint = read_varint(message, pos); break;
      case WireType::kFixed64: f.varint = read_fixed(message, pos, 8); break;
      case WireType::kFixed32: f.varint = read_fixed(message, pos, 4); break;
      case WireType::kLengthDelimited: {
        const uint64_t size = read_varint(message, pos);
        if (size > message.size() - pos)
          throw DataError("protobuf: field " + std::to_string(f.number) + " at byte " + std::to_string(start) +
                          " claims " + std::to_string(size) + " bytes, " + std::to_string(message.size() - pos) +
                          " left");
        f.bytes.assign(message.substr(pos, size));
        pos += size;
        break;
      }
      default:
        throw DataError("protobuf: unsupported wire type " + std::to_string(key & 7) + " at byte " +
                        std::to_string(start));
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

}  // namespace troupe::core::protobuf
