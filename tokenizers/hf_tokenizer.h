// A Hugging Face tokenizer.json with a BPE model, encoded as the `tokenizers` package does: added tokens split out
// (leftmost-longest, lstrip/rstrip/single_word), the normalizer, the pre-tokenizer and BPE by merge rank (byte
// fallback, ignore_merges, unk/fuse_unk). Not WordPiece/Unigram/WordLevel models, post-processors (no BOS/EOS is
// added: ids equal Tokenizer.encode(text, add_special_tokens=False)), truncation or padding.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizers/hf_pipeline.h"

namespace troupe::tokenizers {

struct HfAddedToken {
  int id = 0;
  std::string content;
  bool single_word = false;  // only when not inside a word (alphanumeric or '_' on either side)
  bool lstrip = false;       // swallows whitespace on its left
  bool rstrip = false;       // swallows whitespace on its right
  bool normalized = true;    // matched in normalized text (else in the raw input)
  bool special = false;
};

// Immutable after construction; encode/decode are thread-safe.
//
// Example (vocab {"a": 0, "b": 1, "ab": 2}, merges ["a b"], no pre-tokenizer): encode("abab") == {2, 2};
//         encode("aab") == {0, 2}.
class HfTokenizer {
 public:
  // Throws DataError naming the file and key for malformed JSON or an unsupported component, IoError when
  // unreadable.
  static HfTokenizer from_file(const std::filesystem::path& path);

  // Tokenizer.encode(text, add_special_tokens=False).ids; invalid UTF-8 is first replaced by U+FFFD.
  // `split_special_tokens` false: special added tokens are encoded as plain text (the package's
  // encode_special_tokens); `at_start` false: `text` follows a special token (no Metaspace "first" prefix).
  std::vector<int> encode(std::string_view text, bool split_special_tokens = true, bool at_start = true) const;

  // Tokenizer.decode(ids, skip_special_tokens): the decoder chain over the ids' token strings. DataError on an
  // unknown id.
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const;

  int vocab_size() const;  // largest id + 1
  const std::vector<HfAddedToken>& added_tokens() const { return added_; }
  // The token string of `id` ("" when none).
  const std::string& token(int id) const;

  struct Model;          // BPE vocab and merges; defined in the .cpp
  struct AddedMatchers;  // added-token contents bucketed by first byte; defined in the .cpp

 private:
  HfTokenizer() = default;
  void encode_segment(std::string_view raw, bool at_origin, bool split_special_tokens, std::vector<int>& ids) const;

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const HfNormalizer> normalizer_;
  std::shared_ptr<const HfPreTokenizer> pre_tokenizer_;
  std::shared_ptr<const HfDecoder> decoder_;
  std::vector<HfAddedToken> added_;
  std::shared_ptr<const AddedMatchers> matchers_;
};

}  // namespace troupe::tokenizers
