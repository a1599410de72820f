// Implementation of tokenizers/sentencepiece_normalizer.h. The charsmap blob is
//   uint32 little-endian trie size in bytes | darts-clone double array (uint32 units) | NUL-terminated strings,
// and a rule's trie value is the offset of its replacement in the strings (sentencepiece DecodePrecompiledCharsMap).
#include "tokenizers/sentencepiece_normalizer.h"

#include <algorithm>

#include "core/errors.h"

namespace troupe::tokenizers {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";
constexpr size_t kMaxTrieResults = 32;  // sentencepiece keeps the first 32 prefix matches

// darts-clone's DoubleArrayUnit accessors.
bool has_leaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t value_of(uint32_t unit) { return unit & ((1U << 31) - 1); }
uint32_t label_of(uint32_t unit) { return unit & ((1U << 31) | 0xFF); }
uint32_t offset_of(uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); }

uint32_t read_u32(std::string_view bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  return v;
}

bool is_trail(unsigned char c) { return (c & 0xC0) == 0x80; }
bool valid_code_point(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

}  // namespace

namespace detail {

size_t sentencepiece_char_length(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (b(0) < 0x80) return 1;
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t cp = ((b(0) & 0x1FU) << 6) | (b(1) & 0x3FU);
    return is_trail(b(1)) && cp >= 0x80 && valid_code_point(cp) ? 2 : 0;
  }
  if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t cp = ((b(0) & 0x0FU) << 12) | ((b(1) & 0x3FU) << 6) | (b(2) & 0x3FU);
    return is_trail(b(1)) && is_trail(b(2)) && cp >= 0x800 && valid_code_point(cp) ? 3 : 0;
  }
  if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t cp = ((b(0) & 0x07U) << 18) | ((b(1) & 0x3FU) << 12) | ((b(2) & 0x3FU) << 6) | (b(3) & 0x3FU);
    return is_trail(b(1)) && is_trail(b(2)) && is_trail(b(3)) && cp >= 0x10000 && valid_code_point(cp) ? 4 : 0;
  }
  return 0;
}

}  // namespace detail

SentencePieceNormalizer::SentencePieceNormalizer(const SentencePieceNormalizerSpec& spec,
                                                 std::vector<std::string> user_defined, bool treat_whitespace_as_suffix,
                                                 const std::string& origin)
    : spec_(spec), user_defined_(std::move(user_defined)), treat_whitespace_as_suffix_(treat_whitespace_as_suffix) {
  std::sort(user_defined_.begin(), user_defined_.end());
  for (const auto& s : user_defined_) longest_user_defined_ = std::max(longest_user_defined_, s.size());
  const std::string& blob = spec_.precompiled_charsmap;
  if (blob.empty()) return;
  const auto bad = [&](const std::string& what) {
    throw DataError(origin + ": normalizer_spec.precompiled_charsmap: " + what);
  };
  if (blob.size() < 4) bad("shorter than its 4-byte header");
  const uint32_t trie_bytes = read_u32(blob, 0);
  if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob.size() - 4) {
    bad("trie size " + std::to_string(trie_bytes) + " does not fit the " + std::to_string(blob.size()) + "-byte blob");
  }
  trie_.resize(trie_bytes / 4);
  for (size_t i = 0; i < trie_.size(); ++i) trie_[i] = read_u32(blob, 4 + 4 * i);
  replacements_ = blob.substr(4 + trie_bytes);
  if (!replacements_.empty() && replacements_.back() != '\0') bad("replacement strings are not NUL-terminated");
}

// darts-clone commonPrefixSearch over all of `text`, keeping sentencepiece's rule: the longest of the first 32
// matches. Returns the match length (0 = no rule) and its value.
size_t SentencePieceNormalizer::longest_rule(std::string_view text, uint32_t& value) const {
  if (trie_.empty()) return 0;
  size_t longest = 0;
  size_t found = 0;
  size_t node = offset_of(trie_[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    node ^= byte;
    if (node >= trie_.size()) break;
    const uint32_t unit = trie_[node];
    if (label_of(unit) != byte) break;
    node ^= offset_of(unit);
    if (has_leaf(unit) && node < trie_.size()) {
      if (found < kMaxTrieResults && i + 1 > longest) {
        longest = i + 1;
        value = value_of(trie_[node]);
      }
      ++found;
    }
  }
  return longest;
}

std::pair<std::string_view, size_t> SentencePieceNormalizer::normalize_prefix(std::string_view text) const {
  if (text.empty()) return {{}, 0};
  for (size_t n = std::min(longest_user_defined_, text.size()); n > 0; --n) {
    if (std::binary_search(user_defined_.begin(), user_defined_.end(), text.substr(0, n))) {
      return {text.substr(0, n), n};
    }
  }
  uint32_t value = 0;
  const size_t rule = longest_rule(text, value);
  if (rule > 0 && value < replacements_.size()) {
    return {std::string_view(replacements_.c_str() + value), rule};
  }
  const size_t length = detail::sentencepiece_char_length(text);
  if (length == 0) return {kReplacementChar, 1};
  return {text.substr(0, length), length};
}

std::string SentencePieceNormalizer::normalize(std::string_view input) const {
  std::string out;
  if (spec_.remove_extra_whitespaces) {  // leading spaces
    while (!input.empty()) {
      const auto [piece, consumed] = normalize_prefix(input);
      if (piece != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return out;
  out.reserve(input.size() * 3 / 2 + 4);
  const auto add_space = [&] { out += spec_.escape_whitespaces ? kSpaceSymbol : std::string_view(" "); };
  if (!treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) add_space();
  bool previous_is_space = spec_.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [piece, consumed] = normalize_prefix(input);
    while (previous_is_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    if (!piece.empty()) {
      for (const char c : piece) {
        if (spec_.escape_whitespaces && c == ' ') {
          out += kSpaceSymbol;
        } else {
          out += c;
        }
      }
      previous_is_space = piece.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!spec_.remove_extra_whitespaces) previous_is_space = false;
  }
  if (spec_.remove_extra_whitespaces) {  // trailing spaces
    const std::string_view space = spec_.escape_whitespaces ? kSpaceSymbol : std::string_view(" ");
    while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space) {
      out.resize(out.size() - space.size());
    }
  }
  if (treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) add_space();
  return out;
}

}  // namespace troupe::tokenizers
