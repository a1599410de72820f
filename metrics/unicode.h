// Python's string semantics, which the reference metrics are written in, for UTF-8 text: code points, str.isspace,
// str.split(), str.lower() (full Unicode case mapping, via ICU) and str.strip(). A metric that must equal its
// Python reference counts characters and splits words exactly as Python does, not as <cctype> does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"

namespace troupe::metrics {

// The code points of UTF-8 `text`. Malformed UTF-8 throws DataError naming `what` and the byte offset.
std::u32string decode_utf8(std::string_view text, std::string_view what = "text");
using core::append_utf8;  // core/utf8.h
using core::encode_utf8;

// Python's str.isspace() for one code point (Unicode White_Space of bidi class WS, B or S, or category Zs).
bool is_space(char32_t c);
// Python's str.isalnum() / str.isalpha() / str.isdigit() for one code point.
bool is_alnum(char32_t c);
// Whether `c` is in Python's string.punctuation (ASCII only: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~).
bool is_ascii_punctuation(char32_t c);

// Python's text.split(): the runs of non-whitespace, no empty pieces.
std::vector<std::string> split_whitespace(std::string_view text);
std::vector<std::u32string> split_whitespace(std::u32string_view text);
// Python's text.strip(): without leading and trailing whitespace.
std::string strip(std::string_view text);
// Python's text.lower(): full Unicode lowercase mapping (1 code point may become several; final sigma in context).
std::string lower(std::string_view text);
std::u32string lower(std::u32string_view text);

}  // namespace troupe::metrics
