// UTF-8 measuring and wrapping for cli/label_text.h, on ICU's character properties. Not the screen.
#include "cli/label_text.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "core/utf8.h"

namespace troupe::cli {
namespace {

struct Cell {
  std::string bytes;  // printable UTF-8 of one code point
  int width = 1;
};

// The code points of `text` as printable cells (tabs -> 4 spaces, controls and malformed bytes -> U+FFFD).
std::vector<Cell> cells_of(std::string_view text) {
  std::vector<Cell> out;
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U8_NEXT(s, i, length, c);
    if (c == '\t') {
      for (int k = 0; k < 4; ++k) out.push_back({" ", 1});
      continue;
    }
    if (c == '\r') continue;  // CRLF text: the LF ends the line
    if (c < 0 || c < 0x20 || (c >= 0x7f && c < 0xa0)) c = 0xFFFD;
    Cell cell;
    core::append_utf8(cell.bytes, static_cast<char32_t>(c));
    cell.width = codepoint_width(static_cast<char32_t>(c));
    out.push_back(std::move(cell));
  }
  return out;
}

void wrap_paragraph(const std::vector<Cell>& cells, int width, std::vector<std::string>& lines) {
  size_t start = 0;
  while (start < cells.size()) {
    int used = 0;
    size_t end = start, last_space = std::string::npos;
    while (end < cells.size() && used + cells[end].width <= width) {
      if (cells[end].bytes == " ") last_space = end;
      used += cells[end].width;
      ++end;
    }
    size_t next = end;
    if (end < cells.size()) {
      if (cells[end].bytes == " ") {
        next = end + 1;  // the break falls on a space: drop it
      } else if (last_space != std::string::npos && last_space > start) {
        end = last_space;  // break after the last word that fits
        next = last_space + 1;
      } else if (end == start) {
        end = next = start + 1;  // a character wider than the line
      }
    }
    std::string line;
    for (size_t k = start; k < end; ++k) line += cells[k].bytes;
    lines.push_back(std::move(line));
    start = next;
  }
}

}  // namespace

int codepoint_width(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  const int8_t type = u_charType(cp);
  if (type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK || (type == U_FORMAT_CHAR && cp != 0xAD)) return 0;
  if (cp >= 0x1160 && cp <= 0x11FF) return 0;  // Hangul medial vowels and final consonants join the syllable
  const int ea = u_getIntPropertyValue(cp, UCHAR_EAST_ASIAN_WIDTH);
  if (ea == U_EA_WIDE || ea == U_EA_FULLWIDTH || u_hasBinaryProperty(cp, UCHAR_EMOJI_PRESENTATION)) return 2;
  return 1;
}

int display_width(std::string_view text) {
  int w = 0;
  for (const auto& cell : cells_of(text)) w += cell.width;
  return w;
}

std::string printable_line(std::string_view text) {
  std::string out;
  for (const auto& cell : cells_of(text)) out += cell.bytes;
  return out;
}

std::vector<std::string> wrap_text(std::string_view text, int width) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find('\n', start);
    const std::string_view para =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    const auto cells = cells_of(para);
    if (cells.empty()) lines.emplace_back();
    wrap_paragraph(cells, std::max(width, 1), lines);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return lines;
}

std::string fit_line(std::string_view text, int width) {
  std::string out;
  int used = 0;
  for (const auto& cell : cells_of(text)) {
    if (used + cell.width > width) break;
    out += cell.bytes;
    used += cell.width;
  }
  return out + std::string(static_cast<size_t>(std::max(0, width - used)), ' ');
}

}  // namespace troupe::cli
