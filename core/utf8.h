// UTF-8 encoding of Unicode code points, the one copy every torch-free module uses (tokenizers' WordPiece and Jinja
// engine, metrics). Decoding stays with its callers: each has its own policy for malformed input (replace, throw
// naming the input, ...).
#pragma once

#include <string>
#include <string_view>

namespace troupe::core {

// Appends the UTF-8 bytes of code point `c` (at most 0x10FFFF) to `out`.
void append_utf8(std::string& out, char32_t c);
// The UTF-8 text of `text`'s code points.
std::string encode_utf8(std::u32string_view text);

}  // namespace troupe::core
