// Implementation of tokenizers/sentencepiece_model.h: a minimal protobuf wire-format reader (varint, fixed32,
// fixed64, length-delimited) and the ModelProto field map. Field numbers checked against sentencepiece_model_pb2
// (sentencepiece 0.2): ModelProto pieces=1 trainer_spec=2 normalizer_spec=3; SentencePiece piece=1 score=2 type=3.
#include "tokenizers/sentencepiece_model.h"

#include <cstdint>
#include <cstring>

#include "core/errors.h"
#include "tokenizers/foreign_formats.h"

namespace troupe::tokenizers {
namespace {

enum class Wire { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

// Reads one protobuf message; every read is bounds-checked against the message's own bytes.
class ProtoReader {
 public:
  ProtoReader(std::string_view bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

  bool done() const { return pos_ >= bytes_.size(); }

  // Next field key; false at the end of the message.
  bool next(int& field, Wire& wire) {
    if (done()) return false;
    const uint64_t key = varint();
    field = static_cast<int>(key >> 3);
    const int w = static_cast<int>(key & 7);
    if (field == 0 || (w != 0 && w != 1 && w != 2 && w != 5)) fail("invalid field key " + std::to_string(key));
    wire = static_cast<Wire>(w);
    return true;
  }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) fail("truncated varint");
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail("varint longer than 10 bytes");
  }

  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > bytes_.size() - pos_) fail("length " + std::to_string(n) + " runs past the end of the message");
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  float fixed32_float() {
    if (bytes_.size() - pos_ < 4) fail("truncated fixed32");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float value = 0.0F;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

  void skip(Wire wire) {
    switch (wire) {
      case Wire::kVarint: varint(); break;
      case Wire::kBytes: bytes(); break;
      case Wire::kFixed32: fixed32_float(); break;
      case Wire::kFixed64:
        if (bytes_.size() - pos_ < 8) fail("truncated fixed64");
        pos_ += 8;
        break;
    }
  }

  // The value of a field that must have wire type `expected` (a mismatch is malformed input).
  void expect(Wire wire, Wire expected, int field) {
    if (wire != expected) fail("field " + std::to_string(field) + " has the wrong wire type");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(where_ + " (byte " + std::to_string(pos_) + "): malformed protobuf: " + what);
  }

 private:
  std::string_view bytes_;
  std::string where_;
  size_t pos_ = 0;
};

int as_int32(uint64_t v) { return static_cast<int>(static_cast<int32_t>(static_cast<uint32_t>(v))); }

SentencePiece parse_piece(std::string_view bytes, const std::string& where) {
  ProtoReader r(bytes, where);
  SentencePiece piece;
  int field = 0;
  Wire wire{};
  while (r.next(field, wire)) {
    if (field == 1) {
      r.expect(wire, Wire::kBytes, field);
      piece.piece = std::string(r.bytes());
    } else if (field == 2) {
      r.expect(wire, Wire::kFixed32, field);
      piece.score = r.fixed32_float();
    } else if (field == 3) {
      r.expect(wire, Wire::kVarint, field);
      const uint64_t type = r.varint();
      if (type < 1 || type > 6) r.fail("piece type " + std::to_string(type) + " (expected 1..6)");
      piece.type = static_cast<PieceType>(type);
    } else {
      r.skip(wire);
    }
  }
  return piece;
}

SentencePieceTrainerSpec parse_trainer(std::string_view bytes, const std::string& where) {
  ProtoReader r(bytes, where);
  SentencePieceTrainerSpec spec;
  int field = 0;
  Wire wire{};
  while (r.next(field, wire)) {
    if (field == 44) {  // unk_surface
      r.expect(wire, Wire::kBytes, field);
      spec.unk_surface = std::string(r.bytes());
      continue;
    }
    if (field != 3 && field != 24 && field != 35 && (field < 40 || field > 43)) {
      r.skip(wire);
      continue;
    }
    r.expect(wire, Wire::kVarint, field);
    const uint64_t v = r.varint();
    switch (field) {
      case 3:
        if (v < 1 || v > 4) r.fail("model_type " + std::to_string(v) + " (expected 1..4)");
        spec.model_type = static_cast<SentencePieceModelType>(v);
        break;
      case 24: spec.treat_whitespace_as_suffix = v != 0; break;
      case 35: spec.byte_fallback = v != 0; break;
      case 40: spec.unk_id = as_int32(v); break;
      case 41: spec.bos_id = as_int32(v); break;
      case 42: spec.eos_id = as_int32(v); break;
      case 43: spec.pad_id = as_int32(v); break;
      default: break;
    }
  }
  return spec;
}

SentencePieceNormalizerSpec parse_normalizer(std::string_view bytes, const std::string& where) {
  ProtoReader r(bytes, where);
  SentencePieceNormalizerSpec spec;
  int field = 0;
  Wire wire{};
  while (r.next(field, wire)) {
    if (field == 1 || field == 2) {
      r.expect(wire, Wire::kBytes, field);
      (field == 1 ? spec.name : spec.precompiled_charsmap) = std::string(r.bytes());
    } else if (field >= 3 && field <= 5) {
      r.expect(wire, Wire::kVarint, field);
      const bool v = r.varint() != 0;
      (field == 3 ? spec.add_dummy_prefix : field == 4 ? spec.remove_extra_whitespaces : spec.escape_whitespaces) = v;
    } else {
      r.skip(wire);
    }
  }
  return spec;
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& origin) {
  ProtoReader r(bytes, origin);
  SentencePieceModel model;
  int field = 0;
  Wire wire{};
  while (r.next(field, wire)) {
    if (field >= 1 && field <= 3) {
      r.expect(wire, Wire::kBytes, field);
      const std::string_view sub = r.bytes();
      if (field == 1) {
        model.pieces.push_back(parse_piece(sub, origin + ": pieces[" + std::to_string(model.pieces.size()) + "]"));
      } else if (field == 2) {
        model.trainer = parse_trainer(sub, origin + ": trainer_spec");
      } else {
        model.normalizer = parse_normalizer(sub, origin + ": normalizer_spec");
      }
    } else {
      r.skip(wire);
    }
  }
  if (model.pieces.empty()) throw DataError(origin + ": not a SentencePiece model (no pieces)");
  const auto type = model.trainer.model_type;
  if (type != SentencePieceModelType::kUnigram && type != SentencePieceModelType::kBpe) {
    throw DataError(origin + ": trainer_spec.model_type " + std::to_string(static_cast<int>(type)) +
                    " (WORD/CHAR) is not supported; expected UNIGRAM or BPE");
  }
  return model;
}

SentencePieceModel load_sentencepiece_model(const std::filesystem::path& path) {
  return parse_sentencepiece_model(detail::read_tokenizer_file(path), path.string());
}

}  // namespace troupe::tokenizers
