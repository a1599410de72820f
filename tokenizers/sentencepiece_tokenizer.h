// A SentencePiece tokenizer with sentencepiece's exact ids: normalize (tokenizers/sentencepiece_normalizer.h), then
// Unigram (Viterbi over the piece lattice) or BPE (merge the highest-scoring adjacent pair), then byte fallback
// or merging of unknown runs, as SentencePieceProcessor::Encode does. No sampling, n-best or BOS/EOS insertion.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizers/sentencepiece_model.h"
#include "tokenizers/sentencepiece_normalizer.h"

namespace troupe::tokenizers {

// Immutable after construction; encode/decode are thread-safe.
//
// Example (a Unigram model with "▁hello" and "▁world"): encode("hello world") == {id("▁hello"), id("▁world")};
// decode of those ids == "hello world".
class SentencePieceTokenizer {
 public:
  // Validates the model: exactly one UNKNOWN piece, no empty or duplicate pieces, BYTE pieces only with
  // byte_fallback. Throws DataError naming `origin`.
  SentencePieceTokenizer(SentencePieceModel model, const std::string& origin);

  static SentencePieceTokenizer from_file(const std::filesystem::path& path);

  // The ids sentencepiece.SentencePieceProcessor.encode(text) gives (no BOS/EOS).
  std::vector<int> encode(std::string_view text) const;

  // The text SentencePieceProcessor.decode(ids) gives: U+2581 -> ' ', the dummy prefix space dropped, byte
  // pieces reassembled (invalid UTF-8 -> U+FFFD), control pieces dropped, <unk> as unk_surface. DataError on an
  // id outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;

  // The pieces of encode(text), as text (for `inspect`).
  std::vector<std::string> encode_pieces(std::string_view text) const;

  int vocab_size() const { return static_cast<int>(model_.pieces.size()); }
  const SentencePieceModel& model() const { return model_; }
  // Id of `piece` (any type), or -1.
  int id_of(std::string_view piece) const;

 private:
  using Segment = std::pair<std::string_view, int>;  // piece text (a view into the normalized string), id
  std::vector<Segment> encode_unigram(std::string_view normalized) const;
  std::vector<Segment> encode_bpe(std::string_view normalized) const;
  using RevMerges = std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>;
  void resegment(std::string_view piece, const RevMerges& rev, std::vector<Segment>& out) const;
  std::vector<int> finish(const std::vector<Segment>& segments) const;
  int model_id(std::string_view piece) const;  // reserved pieces first, then normal ones, else unk
  bool is_unknown(int id) const { return model_.pieces[static_cast<size_t>(id)].type == PieceType::kUnknown; }

  struct StringHash {  // lets the maps be searched with a string_view without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  SentencePieceModel model_;
  std::shared_ptr<const SentencePieceNormalizer> normalizer_;
  StringMap<int> normal_;    // NORMAL, USER_DEFINED and UNUSED pieces
  StringMap<int> reserved_;  // CONTROL, UNKNOWN and BYTE pieces
  StringMap<int> prefixes_;  // every prefix of a normal piece -> its id, or -1 when only a prefix
  std::vector<std::string> user_defined_;
  size_t longest_user_defined_ = 0;
  int unk_id_ = -1;
  float min_score_ = 0.0F;  // over NORMAL pieces (Unigram's unknown penalty base)
  float max_score_ = 0.0F;  // over NORMAL pieces, at least FLT_MIN (Unigram's user-defined bonus)
};

}  // namespace troupe::tokenizers
