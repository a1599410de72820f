// The normalizers, pre-tokenizers and decoders of a Hugging Face tokenizer.json, with the `tokenizers` package's
// semantics (NormalizedString::split behaviors, ByteLevel, Metaspace, Digits, ...). Only the text pipeline lives
// here: the BPE model and added tokens are tokenizers/hf_tokenizer.h. Unsupported kinds throw DataError.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace troupe::tokenizers {

// One piece of pre-tokenized text.
struct HfSplit {
  std::string text;        // normalized text (after ByteLevel: bytes written as GPT-2's byte-to-unicode chars)
  bool at_origin = false;  // starts at byte 0 of the input (Metaspace's prepend_scheme "first")
};

class HfNormalizer {
 public:
  virtual ~HfNormalizer() = default;
  virtual void apply(std::string& text) const = 0;
};

class HfPreTokenizer {
 public:
  virtual ~HfPreTokenizer() = default;
  // Replaces `splits` by their pre-tokenized pieces; empty pieces are dropped.
  virtual void apply(std::vector<HfSplit>& splits) const = 0;
};

// Decoders work on the token strings of the ids, as `tokenizers` decoders do (decode_chain).
class HfDecoder {
 public:
  virtual ~HfDecoder() = default;
  virtual std::vector<std::string> apply(std::vector<std::string> tokens) const = 0;
};

// Build from the JSON object of "normalizer" / "pre_tokenizer" / "decoder" (null -> nullptr). `where` names the
// file and key in errors.
std::unique_ptr<HfNormalizer> parse_hf_normalizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<HfPreTokenizer> parse_hf_pre_tokenizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<HfDecoder> parse_hf_decoder(const nlohmann::json& j, const std::string& where);

namespace detail {
// GPT-2's byte-level alphabet applied to every byte of `text` (as UTF-8 of the mapped code points).
std::string byte_level_map(std::string_view text);
// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(char32_t cp, std::string& out);
// NFC, NFD, NFKC, NFKD or Lowercase (tokenizers/hf_unicode_normalizers.cpp, on ICU); nullptr for another type.
std::unique_ptr<HfNormalizer> make_unicode_normalizer(const std::string& type);
}  // namespace detail

}  // namespace troupe::tokenizers
