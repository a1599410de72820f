// Text layout for the terminal of `troupe label`: the display width of UTF-8 text (East Asian wide characters take
// two columns, combining marks none; from ICU's properties), word wrapping to a width, and cutting or padding a line
// to exactly a width. Not the screen's layout (cli/label_app.cpp) and not a full terminal width table (emoji
// sequences are measured code point by code point).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::cli {

// Columns a code point takes: 0 (combining, format), 1 or 2 (wide, fullwidth, emoji presentation).
int codepoint_width(char32_t c);
// Columns of UTF-8 text as printed by printable_line (malformed bytes count as U+FFFD).
int display_width(std::string_view text);
// The text with tabs expanded to 4 spaces and other control characters and malformed bytes as U+FFFD.
std::string printable_line(std::string_view text);
// Word wrap: each '\n'-separated paragraph broken at spaces so that every line is at most `width` columns (a word
// longer than a line is cut); an empty paragraph is one empty line. Each line is printable.
std::vector<std::string> wrap_text(std::string_view text, int width);
// Cut to at most `width` columns, then padded with spaces to exactly `width`.
std::string fit_line(std::string_view text, int width);

}  // namespace troupe::cli
