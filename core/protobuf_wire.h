// The protocol-buffers wire format by hand: an encoder for the few field kinds TensorBoard's event files need
// (varints, 64-bit doubles, length-delimited bytes and sub-messages) and a flat field reader for checking them.
// Not a protobuf library: no schemas, no reflection, no groups, no 32-bit fixed fields other than float.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::core::protobuf {

// Wire types of the protobuf encoding (the low 3 bits of a field key).
enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Appends LEB128 varints: 300 -> "\xAC\x02". Negative int64 values take ten bytes (two's complement), as in
// protobuf's int64 fields.
void append_varint(std::string& out, uint64_t value);

// Builds one message, field by field, in the order called (parsers accept any order). Example:
//   Encoder e; e.add_string(1, "hi"); e.add_varint(2, 150);   // bytes: 0a 02 68 69 10 96 01
class Encoder {
 public:
  Encoder& add_varint(uint32_t field, uint64_t value);                             // int32/int64/enum/bool fields
  Encoder& add_int64(uint32_t field, int64_t value);                               // int64 (two's complement varint)
  Encoder& add_double(uint32_t field, double value);                               // fixed64, little-endian IEEE-754
  Encoder& add_float(uint32_t field, float value);                                 // fixed32, little-endian IEEE-754
  Encoder& add_bytes(uint32_t field, std::string_view bytes);                      // string / bytes
  Encoder& add_message(uint32_t field, const Encoder& message);                    // an embedded message
  Encoder& add_packed_doubles(uint32_t field, const std::vector<double>& values);  // repeated double, packed
  const std::string& bytes() const { return out_; }

 private:
  void add_key(uint32_t field, WireType type);
  std::string out_;
};

// One field as it appears on the wire: `varint` holds varint and fixed values (the raw 32/64 bits for fixed
// fields), `bytes` holds length-delimited payloads (a nested message is parsed again with parse_fields).
struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t varint = 0;
  std::string bytes;
};

// Reads every top-level field of `message` in wire order. DataError naming the byte offset on a truncated or
// malformed message (a varint over 10 bytes, a length past the end, an unknown wire type).
std::vector<Field> parse_fields(std::string_view message);

}  // namespace troupe::core::protobuf
