// sacreBLEU 2.6.0's BLEU tokenizers ('13a', 'intl', 'char'; 'none' is the identity) on UTF-8, and the Python string
// primitives the sacreBLEU metrics share (str.rstrip, str.split into views, str.replace), allocation-free where easy.
// Not the regex engine: each tokenizer's regex passes are hand-written scans with Python re's semantics.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::metrics {

// Each returns what the sacreBLEU tokenizer's __call__(line) returns: tokens joined by single spaces.
// Tokenizer13a (mteval-v13a: '<skipped>', '-\n', '\n', the four XML entities, then TokenizerRegexp's passes).
std::string tokenize_13a(std::string_view line);
// TokenizerV14International (mteval-v14: punctuation \p{P} next to a non-number, symbols \p{S}). Unicode general
// categories come from ICU, whose Unicode version may trail Python's `regex` module for newly assigned characters.
std::string tokenize_intl(std::string_view line);
// TokenizerChar: every code point, whitespace included, joined by spaces (no whitespace normalisation).
std::string tokenize_char(std::string_view line);

namespace detail {

// The version that sacreBLEU signatures end with.
inline constexpr std::string_view kSacrebleuVersion = "2.6.0";

// Checks the inputs of a corpus metric: at least one hypothesis, refs.size() == hyps.size(), the same number (>= 1)
// of references for every hypothesis, valid UTF-8 throughout. Returns that number; DataError naming `metric` and the
// offending line otherwise.
int check_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs,
                 std::string_view metric);
// Python's f"{value:.{digits}f}" (correctly rounded, ties to even like Python).
std::string fixed(double value, int digits);

// Byte offset of the first malformed UTF-8 sequence in `text`, or npos when it is valid.
size_t utf8_error_offset(std::string_view text);
// Throws DataError "<where>: not valid UTF-8 (byte N)" unless `text` is valid UTF-8.
void check_utf8(std::string_view text, std::string_view where);

// The code point at text[i] of VALID UTF-8 (check_utf8 first); advances i past it.
inline char32_t next_code_point(std::string_view text, size_t& i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  const int len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
  char32_t c = b & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  i += len;
  return c;
}

// Python's str.isspace() of the ASCII code points (\t\n\v\f\r, the separators 0x1C-0x1F, space).
inline bool is_ascii_space(unsigned char b) { return (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20); }

// Python's text.rstrip(): a view of `text` without trailing Unicode whitespace.
std::string_view rstrip(std::string_view text);
// Python's text.split(): appends the whitespace-separated pieces of `text` to `out` as views into `text`.
void split_views(std::string_view text, std::vector<std::string_view>& out);
// ' '.join(text.split()).
std::string join_split(std::string_view text);
// Python's text.replace(from, to) in place (non-overlapping, left to right); `scratch` is reused storage.
void replace_all(std::string& text, std::string_view from, std::string_view to, std::string& scratch);

// The tokenizers before their final ' '.join(line.split()): `out` holds text whose str.split() gives the tokens.
// `scratch` is reused storage; both are overwritten.
void tokenize_13a_unsplit(std::string_view line, std::string& out, std::string& scratch);
void tokenize_intl_unsplit(std::string_view line, std::string& out, std::u32string& scratch_a,
                           std::u32string& scratch_b);

// TokenizerRegexp's passes of mteval-v13a (also Tercom's normalisation), on `text` (ASCII-only rules: bytes suffice
// since UTF-8 never puts an ASCII byte inside a multi-byte character). Results go to `out`.
// ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
void pad_13a_punctuation(std::string_view text, std::string& out);
// ([^0-9])([\.,]) -> '\1 \2 ', then ([\.,])([^0-9]) -> ' \1 \2', then ([0-9])(-) -> '\1 \2 '.
void split_periods_commas_dashes(std::string& text, std::string& scratch);

}  // namespace detail
}  // namespace troupe::metrics
