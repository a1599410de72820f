// SentencePiece's text normalizer, rule for rule as sentencepiece's normalizer.cc: the precompiled charsmap (a
// darts-clone double-array trie of longest-match rewrite rules, e.g. nmt_nfkc) or identity, whitespace cleanup,
// the dummy prefix and ' ' -> U+2581. It is not a Unicode NFKC implementation: the rules come from the model file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizers/sentencepiece_model.h"

namespace troupe::tokenizers {

// Immutable after construction; normalize() is thread-safe.
//
// Example (nmt_nfkc, defaults): normalize("  Ｈｅｌｌｏ   world ") == "\u2581Hello\u2581world".
class SentencePieceNormalizer {
 public:
  // `user_defined`: USER_DEFINED pieces, which are copied through unnormalized when they start at a position.
  // Throws DataError when the charsmap is malformed (`origin` names the model file).
  SentencePieceNormalizer(const SentencePieceNormalizerSpec& spec, std::vector<std::string> user_defined,
                          bool treat_whitespace_as_suffix, const std::string& origin);

  std::string normalize(std::string_view text) const;

  // The normalized bytes for the longest rule matching at the start of `text` and how many input bytes it
  // consumes. Invalid UTF-8 yields U+FFFD for one byte.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view text) const;

 private:
  size_t longest_rule(std::string_view text, uint32_t& value) const;

  SentencePieceNormalizerSpec spec_;
  std::vector<std::string> user_defined_;
  size_t longest_user_defined_ = 0;
  bool treat_whitespace_as_suffix_ = false;
  std::vector<uint32_t> trie_;  // darts-clone units
  std::string replacements_;    // NUL-terminated replacement strings, indexed by a trie value
};

namespace detail {
// sentencepiece's DecodeUTF8 validity: the length of the well-formed UTF-8 character at the start of `text`
// (no overlongs, surrogates or code points above U+10FFFF), or 0 when it is malformed.
size_t sentencepiece_char_length(std::string_view text);
}  // namespace detail

}  // namespace troupe::tokenizers
