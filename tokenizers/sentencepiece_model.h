// A SentencePiece `.model` file (the ModelProto protobuf) read into plain structs, with a hand-written protobuf
// decoder for the fields encoding needs. It is not an encoder (tokenizers/sentencepiece_tokenizer.h) and not a
// writer; unknown fields are skipped as protobuf does, malformed bytes throw DataError naming the file and field.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizers {

// ModelProto.SentencePiece.Type (field numbers and values as sentencepiece_model.proto).
enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// TrainerSpec.ModelType: only UNIGRAM and BPE are encoded; WORD and CHAR are rejected on load.
enum class SentencePieceModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

struct SentencePiece {
  std::string piece;                    // UTF-8 text, U+2581 for a space; "<0x41>" for a byte piece
  float score = 0.0F;                   // Unigram: log-probability; BPE: merge priority (higher first)
  PieceType type = PieceType::kNormal;  // proto default NORMAL
};

// The TrainerSpec fields that change encoding (defaults are the proto2 defaults).
struct SentencePieceTrainerSpec {
  SentencePieceModelType model_type = SentencePieceModelType::kUnigram;
  bool byte_fallback = false;               // unknown characters become <0xXX> byte pieces
  bool treat_whitespace_as_suffix = false;  // the dummy space goes at the end instead of the start
  int unk_id = 0;
  int bos_id = 1;
  int eos_id = 2;
  int pad_id = -1;
  std::string unk_surface = " \xE2\x81\x87 ";  // what decode writes for <unk> (" ⁇ ")
};

// NormalizerSpec (also used for the optional denormalizer_spec, which encoding ignores).
struct SentencePieceNormalizerSpec {
  std::string name;                      // "nmt_nfkc", "identity", ...; informational
  std::string precompiled_charsmap;      // darts-clone trie + replacement strings; empty = identity
  bool add_dummy_prefix = true;          // a U+2581 before the text
  bool remove_extra_whitespaces = true;  // strip leading/trailing spaces, collapse runs
  bool escape_whitespaces = true;        // ' ' -> U+2581
};

struct SentencePieceModel {
  std::vector<SentencePiece> pieces;  // id i = pieces[i]
  SentencePieceTrainerSpec trainer;
  SentencePieceNormalizerSpec normalizer;
};

// Parses ModelProto bytes; `origin` names the source in errors. Throws DataError on malformed protobuf, no pieces,
// an unsupported model type, or a piece type outside 1..6.
SentencePieceModel parse_sentencepiece_model(std::string_view bytes, const std::string& origin);

// Reads and parses a .model file (IoError when unreadable).
SentencePieceModel load_sentencepiece_model(const std::filesystem::path& path);

}  // namespace troupe::tokenizers
