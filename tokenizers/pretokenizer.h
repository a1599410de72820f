// Regex pre-tokeniser for byte-level BPE: splits text into the pieces tiktoken's find_iter gives.
// It is only the splitter (PCRE2, UTF + UCP, JIT); it knows nothing about ranks or merges.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::tokenizers {

// GPT-2 / r50k pattern (tiktoken "gpt2" pat_str).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// cl100k_base pattern (pat_str of cl100k_base.meta.json, case-insensitive contractions spelled out).
inline constexpr const char* kCl100kPattern =
    R"(('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Compiled splitter. Copies share the compiled pattern; split() is safe to call from many threads.
class Pretokenizer {
 public:
  // Throws ConfigError when the pattern does not compile. `\s` and `\S` are rewritten to Unicode
  // White_Space (what Rust's regex means by them) so the split matches tiktoken exactly.
  explicit Pretokenizer(const std::string& pattern);

  // Appends the pieces of `text` (views into it) to `pieces`. Every input byte lands in exactly one
  // piece, in order. Bytes that are not valid UTF-8 never match the regex; each run of them becomes
  // its own piece.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  // Appends the [begin, end) byte spans of the regex's non-empty matches, left to right (Hugging Face's
  // find_matches; an empty match steps one character on). Used by the tokenizer.json pipeline's Split.
  void matches(std::string_view text, std::vector<std::pair<size_t, size_t>>& spans) const;

  const std::string& pattern() const { return pattern_; }

  struct Compiled;  // PCRE2 handles; defined in the .cpp

 private:
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
};

namespace detail {
// Rewrites `\s` / `\S` in a regex into explicit Unicode White_Space classes (see Pretokenizer).
std::string rewrite_whitespace_classes(const std::string& pattern);
}  // namespace detail

}  // namespace troupe::tokenizers
