// Byte-level BPE tokeniser with tiktoken's exact semantics (regex split, then lowest-rank merges); or, through a
// TokenizerBackend, another encoder (SentencePiece, tokenizer.json pipelines) behind the same interface.
// It is not a trainer and does not read files: build a BpeSpec with tokenizers/foreign_formats.h.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizers {

class BpeTokenizer;
namespace detail {
// Runs one merge strategy on `piece` (no direct-token shortcut): the quadratic reference scan, or the
// heap used for long pieces. Exposed so tests can check both give identical ids.
std::vector<int> merge_piece_for_test(const BpeTokenizer& tok, std::string_view piece, bool use_heap);
}  // namespace detail

// Everything that defines an encoding.
struct BpeSpec {
  std::vector<std::string> tokens_by_rank;    // bytes of the token with rank (= id) i; ids 0..n-1 all present
  std::string pattern;                        // pre-tokenisation regex (PCRE2 syntax, tiktoken pat_str)
  std::map<std::string, int> special_tokens;  // special text -> id; ids outside 0..n-1
  std::string name;                           // e.g. "gpt2", "cl100k_base"; informational
};

// An encoder with other rules (a SentencePiece model, a general Hugging Face tokenizer.json) behind BpeTokenizer's
// interface, so every command that opens a tokenizer accepts it. Implementations are immutable and thread-safe.
class TokenizerBackend {
 public:
  virtual ~TokenizerBackend() = default;
  // Ids of `text` with special-token text encoded as plain text; `at_start`: `text` begins the input (it follows
  // a special token otherwise).
  virtual std::vector<int> encode_ordinary(std::string_view text, bool at_start) const = 0;
  // Ids of `text` with every special token recognized as the reference package does, or false when special tokens
  // are left to BpeTokenizer::encode's split.
  virtual bool encode_with_specials(std::string_view text, std::vector<int>& out) const = 0;
  // The reference package's decode (text, not raw token bytes). DataError on an unknown id.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual std::vector<std::string> pieces(std::string_view text) const = 0;  // decoded text of each token
  virtual int vocab_size() const = 0;
};

// Immutable after construction; copies share the tables, and all methods are thread-safe.
//
// Example (gpt2): encode_ordinary("hello world") == {31373, 995};
//                 decode({31373, 995}) == "hello world".
class BpeTokenizer {
 public:
  // Validates the spec: all 256 single bytes present, no duplicate or empty tokens, special ids
  // unique and not clashing with ranks. Throws DataError (ConfigError for a bad pattern).
  explicit BpeTokenizer(BpeSpec spec);

  // A tokenizer whose encoding and decoding are `backend`'s; `spec` gives only the name and the special tokens
  // (tokens_by_rank and pattern empty). Formats that need the byte-level ranks (tiktoken/Troupe export) refuse it.
  BpeTokenizer(BpeSpec spec, std::shared_ptr<const TokenizerBackend> backend);

  // Encodes `text` as plain bytes: special-token text gets no special treatment.
  std::vector<int> encode_ordinary(std::string_view text) const;

  // tiktoken's encode(): occurrences of specials in `allowed_special` become their single id. Any other
  // special text present throws DataError, unless `disallowed_is_error` is false, in which case it
  // is encoded as ordinary text.
  std::vector<int> encode(std::string_view text, const std::set<std::string>& allowed_special,
                          bool disallowed_is_error = true) const;

  // Concatenated token bytes (may be invalid UTF-8 when a character was split). DataError on an
  // unknown id.
  std::string decode(const std::vector<int>& ids) const;

  // decode() with each maximal invalid UTF-8 subsequence replaced by U+FFFD (Python's
  // errors="replace").
  std::string decode_lossy_utf8(const std::vector<int>& ids) const;

  // The pre-tokenised pieces of `text` (for `inspect`), before any merging.
  std::vector<std::string> pieces(std::string_view text) const;

  // Largest id (ordinary or special) + 1, as tiktoken's n_vocab.
  int vocab_size() const;
  const BpeSpec& spec() const;

  struct Tables;  // rank lookup, special tables, compiled pretokenizer; defined in the .cpp

 private:
  void encode_piece(std::string_view piece, std::vector<int>& out) const;
  void encode_ordinary_into(std::string_view text, std::vector<int>& out, bool at_start = true) const;

  std::shared_ptr<const Tables> tables_;
  friend std::vector<int> detail::merge_piece_for_test(const BpeTokenizer&, std::string_view, bool);
};

namespace detail {
// Replaces each maximal invalid subsequence of `bytes` with U+FFFD (Unicode "maximal subpart").
std::string utf8_replace_invalid(std::string_view bytes);
}  // namespace detail

}  // namespace troupe::tokenizers
