// Python's str semantics for the Jinja engine (tokenizers/jinja.h): code points, str.isspace, full Unicode case
// mappings with the final-sigma rule (str.lower/upper/title/capitalize), strip/split/splitlines and repr(), exactly as
// CPython 3.11 does them. The Unicode data comes from Python itself (jinja_unicode_tables.cpp, generated).
// Not a general string library: only what templates reach through filters and str methods.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"

namespace troupe::tokenizers::jinja::detail {

// One code point's full case mapping: up to three code points, zero-padded.
struct CaseMapping {
  char32_t cp;
  char32_t to[3];
};
// An inclusive range of code points.
struct CodeRange {
  char32_t lo;
  char32_t hi;
};
extern const CaseMapping kLowerMap[];
extern const size_t kLowerMapSize;
extern const CaseMapping kUpperMap[];
extern const size_t kUpperMapSize;
extern const CaseMapping kTitleMap[];
extern const size_t kTitleMapSize;
extern const CodeRange kCased[];
extern const size_t kCasedSize;
extern const CodeRange kCaseIgnorable[];
extern const size_t kCaseIgnorableSize;
extern const CodeRange kAlnum[];
extern const size_t kAlnumSize;
extern const CodeRange kPrintable[];
extern const size_t kPrintableSize;

// UTF-8 <-> code points. Malformed UTF-8 throws DataError.
std::u32string decode(std::string_view text);
inline std::string encode(std::u32string_view text) { return core::encode_utf8(text); }
using core::append_utf8;  // core/utf8.h
// len(text) in code points.
size_t length(std::string_view text);

bool is_space(char32_t c);      // str.isspace
bool is_alnum(char32_t c);      // str.isalnum
bool is_printable(char32_t c);  // str.isprintable
bool is_cased(char32_t c);
bool is_case_ignorable(char32_t c);
bool is_word(char32_t c);  // the \w of Python's re: isalnum or '_'

std::u32string lower(std::u32string_view s);  // str.lower (final sigma in context)
std::u32string upper(std::u32string_view s);
std::u32string title(std::u32string_view s);       // str.title
std::u32string capitalize(std::u32string_view s);  // str.capitalize: first char title case, the rest lower

// str.strip / lstrip / rstrip: `chars` of nullopt strips whitespace.
std::u32string strip(std::u32string_view s, const std::optional<std::u32string>& chars, bool left, bool right);
// str.split / rsplit: `sep` of nullopt splits on runs of whitespace; maxsplit < 0 means no limit. An empty sep
// throws DataError (ValueError in Python).
std::vector<std::u32string> split(std::u32string_view s, const std::optional<std::u32string>& sep, int64_t maxsplit);
std::vector<std::u32string> rsplit(std::u32string_view s, const std::optional<std::u32string>& sep, int64_t maxsplit);
// str.splitlines (the line boundaries \n \r \r\n \v \f \x1c \x1d \x1e \x85 \u2028 \u2029).
std::vector<std::u32string> splitlines(std::u32string_view s, bool keepends);
// str.replace(old, new, count): count < 0 replaces all.
std::u32string replace(std::u32string_view s, std::u32string_view old, std::u32string_view with, int64_t count);
// str.find / rfind / count on [start, end) given as Python slice bounds (already clamped by the caller).
int64_t find(std::u32string_view s, std::u32string_view sub, int64_t start, int64_t end, bool reverse);
int64_t count(std::u32string_view s, std::u32string_view sub, int64_t start, int64_t end);
// str.center(width): Python's padding split (left gets marg // 2 + (marg & width & 1)).
std::u32string center(std::u32string_view s, int64_t width, char32_t fill = U' ');

// repr(s) for a str: quotes chosen as Python does, escapes for \\, the quote, \t \n \r and non-printable characters.
std::string repr(std::string_view utf8);

}  // namespace troupe::tokenizers::jinja::detail
