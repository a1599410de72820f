#include "metrics/sacrebleu_tokenizers.h"

#include <fmt/format.h>
#include <unicode/uchar.h>

#include <array>
#include <cstdio>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::metrics {
namespace detail {

size_t utf8_error_offset(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    const int len = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    char32_t c = b & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    const bool overlong = (len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000);
    if (overlong || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view text, std::string_view where) {
  const size_t at = utf8_error_offset(text);
  if (at != std::string_view::npos) throw DataError(fmt::format("{}: not valid UTF-8 (byte {})", where, at));
}

int check_corpus(std::span<const std::string> hyps, std::span<const std::vector<std::string>> refs,
                 std::string_view metric) {
  if (hyps.empty()) throw DataError(fmt::format("{}: no hypotheses", metric));
  if (refs.size() != hyps.size()) {
    throw DataError(fmt::format("{}: {} hypotheses but references for {}", metric, hyps.size(), refs.size()));
  }
  const size_t num_refs = refs[0].size();
  for (size_t i = 0; i < hyps.size(); ++i) {
    if (refs[i].empty()) throw DataError(fmt::format("{}: hypothesis {} has no reference", metric, i));
    if (refs[i].size() != num_refs) {
      throw DataError(
          fmt::format("{}: hypothesis {} has {} references, hypothesis 0 has {} (sacreBLEU needs the same "
                      "number for every hypothesis)",
                      metric, i, refs[i].size(), num_refs));
    }
    if (utf8_error_offset(hyps[i]) != std::string_view::npos) {
      check_utf8(hyps[i], fmt::format("{}: hypothesis {}", metric, i));
    }
    for (size_t r = 0; r < num_refs; ++r) {
      if (utf8_error_offset(refs[i][r]) != std::string_view::npos) {
        check_utf8(refs[i][r], fmt::format("{}: reference {} of hypothesis {}", metric, r, i));
      }
    }
  }
  return static_cast<int>(num_refs);
}

std::string fixed(double value, int digits) {
  // glibc's printf rounds the exact binary value to nearest, ties to even, as CPython's float formatting does.
  char buffer[512];
  const int n = std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  if (n >= 0 && static_cast<size_t>(n) < sizeof(buffer)) return std::string(buffer, static_cast<size_t>(n));
  return fmt::format("{:.{}f}", value, digits);
}

std::string_view rstrip(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    const auto last = static_cast<unsigned char>(text[end - 1]);
    if (last < 0x80) {
      if (!is_ascii_space(last)) break;
      --end;
      continue;
    }
    size_t start = end - 1;  // back to the lead byte of the last code point
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!is_space(next_code_point(text, i))) break;
    end = start;
  }
  return text.substr(0, end);
}

void split_views(std::string_view text, std::vector<std::string_view>& out) {
  constexpr size_t kNone = std::string_view::npos;
  size_t start = kNone;
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = i;
    const auto b = static_cast<unsigned char>(text[i]);
    bool space;
    if (b < 0x80) {
      space = is_ascii_space(b);
      ++i;
    } else {
      space = is_space(next_code_point(text, i));
    }
    if (space) {
      if (start != kNone) out.push_back(text.substr(start, at - start));
      start = kNone;
    } else if (start == kNone) {
      start = at;
    }
  }
  if (start != kNone) out.push_back(text.substr(start));
}

std::string join_split(std::string_view text) {
  std::vector<std::string_view> pieces;
  split_views(text, pieces);
  std::string out;
  out.reserve(text.size());
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (k > 0) out.push_back(' ');
    out.append(pieces[k]);
  }
  return out;
}

void replace_all(std::string& text, std::string_view from, std::string_view to, std::string& scratch) {
  size_t hit = text.find(from);
  if (hit == std::string::npos) return;
  scratch.clear();
  size_t done = 0;
  while (hit != std::string::npos) {
    scratch.append(text, done, hit - done);
    scratch.append(to);
    done = hit + from.size();
    hit = text.find(from, done);
  }
  scratch.append(text, done, std::string::npos);
  text.swap(scratch);
}

namespace {

// The character class of TokenizerRegexp's first rule: ASCII punctuation except ' , - . and the space.
constexpr std::array<bool, 256> make_13a_class() {
  std::array<bool, 256> table{};
  for (unsigned c = 0x7B; c <= 0x7E; ++c) table[c] = true;  // { | } ~
  for (unsigned c = 0x5B; c <= 0x60; ++c) table[c] = true;  // [ \ ] ^ _ `
  for (unsigned c = 0x20; c <= 0x26; ++c) table[c] = true;  // space ! " # $ % &
  for (unsigned c = 0x28; c <= 0x2B; ++c) table[c] = true;  // ( ) * +
  for (unsigned c = 0x3A; c <= 0x40; ++c) table[c] = true;  // : ; < = > ? @
  table['/'] = true;
  return table;
}
constexpr std::array<bool, 256> k13aClass = make_13a_class();

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// One left-to-right, non-overlapping re.sub of a two-character pattern (first)(second) by '\1 \2 ' (or by
// ' \1 \2' when `space_before`). Python's re tries each start position in turn and resumes after a match: so does
// this. A match of 2 bytes becomes 4, so the output is at most twice the input.
template <class First, class Second>
void sub_pairs(const std::string& in, std::string& out, First first, Second second, bool space_before) {
  const size_t n = in.size();
  out.resize(2 * n);
  char* o = out.data();
  for (size_t i = 0; i < n;) {
    if (i + 1 < n && first(in[i]) && second(in[i + 1])) {
      if (space_before) *o++ = ' ';
      *o++ = in[i];
      *o++ = ' ';
      *o++ = in[i + 1];
      if (!space_before) *o++ = ' ';
      i += 2;
    } else {
      *o++ = in[i++];
    }
  }
  out.resize(static_cast<size_t>(o - out.data()));
}

}  // namespace

void pad_13a_punctuation(std::string_view text, std::string& out) {
  out.resize(3 * text.size());
  char* o = out.data();
  for (const char c : text) {
    if (k13aClass[static_cast<unsigned char>(c)]) {
      *o++ = ' ';
      *o++ = c;
      *o++ = ' ';
    } else {
      *o++ = c;
    }
  }
  out.resize(static_cast<size_t>(o - out.data()));
}

void split_periods_commas_dashes(std::string& text, std::string& scratch) {
  // A UTF-8 byte is never an ASCII digit, period or comma unless it is that character, and a multi-byte character
  // matches [^0-9] as a whole exactly where its last (or first) byte does here: the byte scan equals the code point
  // scan. A pass whose pattern needs a character the text lacks changes nothing and is skipped.
  const auto non_digit = [](char c) { return !is_digit(c); };
  const auto dash = [](char c) { return c == '-'; };
  if (text.find_first_of(".,") != std::string::npos) {
    sub_pairs(text, scratch, non_digit, is_period_or_comma, false);  // ([^0-9])([\.,]) -> '\1 \2 '
    sub_pairs(scratch, text, is_period_or_comma, non_digit, true);   // ([\.,])([^0-9]) -> ' \1 \2'
  }
  if (text.find('-') != std::string::npos) {
    sub_pairs(text, scratch, is_digit, dash, false);  // ([0-9])(-) -> '\1 \2 '
    text.swap(scratch);
  }
}

void tokenize_13a_unsplit(std::string_view line, std::string& out, std::string& scratch) {
  // The language-independent part, as Tokenizer13a.__call__: str.replace in this order.
  std::string& text = out;
  text.assign(line);
  if (text.find_first_of("<\n") != std::string::npos) {  // most lines have neither: skip three searches
    replace_all(text, "<skipped>", "", scratch);
    replace_all(text, "-\n", "", scratch);
    replace_all(text, "\n", " ", scratch);
  }
  if (text.find('&') != std::string::npos) {
    replace_all(text, "&quot;", "\"", scratch);
    replace_all(text, "&amp;", "&", scratch);
    replace_all(text, "&lt;", "<", scratch);
    replace_all(text, "&gt;", ">", scratch);
  }
  // TokenizerRegexp on f' {line} '.
  scratch.clear();
  scratch.push_back(' ');
  scratch.append(text);
  scratch.push_back(' ');
  pad_13a_punctuation(scratch, out);
  split_periods_commas_dashes(out, scratch);
}

namespace {

bool is_number(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }
bool is_punctuation(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; }
bool is_symbol(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_S_MASK) != 0; }

}  // namespace

void tokenize_intl_unsplit(std::string_view line, std::string& out, std::u32string& a, std::u32string& b) {
  a.clear();
  for (size_t i = 0; i < line.size();) a.push_back(next_code_point(line, i));
  // (\P{N})(\p{P}) -> '\1 \2 '
  b.clear();
  for (size_t i = 0; i < a.size();) {
    if (i + 1 < a.size() && !is_number(a[i]) && is_punctuation(a[i + 1])) {
      b += {a[i], U' ', a[i + 1], U' '};
      i += 2;
    } else {
      b.push_back(a[i++]);
    }
  }
  // (\p{P})(\P{N}) -> ' \1 \2'
  a.clear();
  for (size_t i = 0; i < b.size();) {
    if (i + 1 < b.size() && is_punctuation(b[i]) && !is_number(b[i + 1])) {
      a += {U' ', b[i], U' ', b[i + 1]};
      i += 2;
    } else {
      a.push_back(b[i++]);
    }
  }
  // (\p{S}) -> ' \1 '
  out.clear();
  for (const char32_t c : a) {
    if (is_symbol(c)) {
      out.push_back(' ');
      append_utf8(out, c);
      out.push_back(' ');
    } else {
      append_utf8(out, c);
    }
  }
}

}  // namespace detail

std::string tokenize_13a(std::string_view line) {
  detail::check_utf8(line, "tokenize_13a");
  std::string out, scratch;
  detail::tokenize_13a_unsplit(line, out, scratch);
  return detail::join_split(out);
}

std::string tokenize_intl(std::string_view line) {
  detail::check_utf8(line, "tokenize_intl");
  std::string out;
  std::u32string a, b;
  detail::tokenize_intl_unsplit(line, out, a, b);
  return detail::join_split(out);
}

std::string tokenize_char(std::string_view line) {
  detail::check_utf8(line, "tokenize_char");
  std::string out;
  out.reserve(line.size() * 2);
  for (size_t i = 0; i < line.size();) {
    const size_t start = i;
    detail::next_code_point(line, i);
    if (start > 0) out.push_back(' ');
    out.append(line.substr(start, i - start));
  }
  return out;
}

}  // namespace troupe::metrics
