// Python str semantics over code points; see jinja_pystr.h. Case data: jinja_unicode_tables.cpp (generated).
#include "tokenizers/jinja_pystr.h"

#include <algorithm>

#include "core/errors.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

const CaseMapping* find_mapping(const CaseMapping* table, size_t size, char32_t c) {
  const CaseMapping* end = table + size;
  const CaseMapping* it = std::lower_bound(table, end, c, [](const CaseMapping& m, char32_t v) { return m.cp < v; });
  return it != end && it->cp == c ? it : nullptr;
}

bool in_ranges(const CodeRange* table, size_t size, char32_t c) {
  const CodeRange* end = table + size;
  const CodeRange* it = std::lower_bound(table, end, c, [](const CodeRange& r, char32_t v) { return r.hi < v; });
  return it != end && it->lo <= c;
}

void append_mapping(std::u32string& out, const CaseMapping* table, size_t size, char32_t c) {
  const CaseMapping* m = find_mapping(table, size, c);
  if (m == nullptr) {
    out.push_back(c);
    return;
  }
  for (char32_t t : m->to) {
    if (t != 0) out.push_back(t);
  }
}

void append_title(std::u32string& out, char32_t c) {
  if (find_mapping(kTitleMap, kTitleMapSize, c) != nullptr) {
    append_mapping(out, kTitleMap, kTitleMapSize, c);
  } else {
    append_mapping(out, kUpperMap, kUpperMapSize, c);
  }
}

// CPython's handle_capital_sigma: U+03A3 lowers to final sigma after a cased letter (skipping case-ignorables) when
// no cased letter follows (again skipping case-ignorables).
char32_t lower_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = s[--j];
    if (!is_case_ignorable(c)) {
      found = true;
      break;
    }
  }
  bool final_sigma = found && is_cased(c);
  if (final_sigma && i + 1 < s.size()) {
    size_t k = i + 1;
    for (; k < s.size(); ++k) {
      c = s[k];
      if (!is_case_ignorable(c)) break;
    }
    final_sigma = k == s.size() || !is_cased(c);
  }
  return final_sigma ? U'\u03c2' : U'\u03c3';
}

void append_lower_at(std::u32string& out, std::u32string_view s, size_t i) {
  if (s[i] == U'\u03a3') {
    out.push_back(lower_sigma(s, i));
  } else {
    append_mapping(out, kLowerMap, kLowerMapSize, s[i]);
  }
}

bool is_line_break(char32_t c) {
  return c == U'\n' || c == U'\r' || c == U'\v' || c == U'\f' || c == U'\x1c' || c == U'\x1d' || c == U'\x1e' ||
         c == U'\x85' || c == U'\u2028' || c == U'\u2029';
}

bool in_chars(char32_t c, const std::optional<std::u32string>& chars) {
  return chars ? chars->find(c) != std::u32string::npos : is_space(c);
}

}  // namespace

std::u32string decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    int extra = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + extra >= text.size() + (extra == 0)) {
      throw DataError("invalid UTF-8 at byte " + std::to_string(i));
    }
    char32_t c = extra == 0 ? b : (b & (0x3F >> extra));
    for (int k = 1; k <= extra; ++k) {
      unsigned char cont = static_cast<unsigned char>(text[i + k]);
      if ((cont & 0xC0) != 0x80) throw DataError("invalid UTF-8 at byte " + std::to_string(i));
      c = (c << 6) | (cont & 0x3F);
    }
    out.push_back(c);
    i += extra + 1;
  }
  return out;
}

size_t length(std::string_view text) {
  size_t n = 0;
  for (char ch : text) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
bool is_alnum(char32_t c) { return in_ranges(kAlnum, kAlnumSize, c); }
bool is_printable(char32_t c) { return in_ranges(kPrintable, kPrintableSize, c); }
bool is_cased(char32_t c) { return in_ranges(kCased, kCasedSize, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, kCaseIgnorableSize, c); }
bool is_word(char32_t c) { return c == U'_' || is_alnum(c); }

std::u32string lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) append_lower_at(out, s, i);
  return out;
}

std::u32string upper(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) append_mapping(out, kUpperMap, kUpperMapSize, c);
  return out;
}

std::u32string title(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  bool previous_is_cased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (previous_is_cased) {
      append_lower_at(out, s, i);
    } else {
      append_title(out, s[i]);
    }
    previous_is_cased = is_cased(s[i]);
  }
  return out;
}

std::u32string capitalize(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 0) {
      append_title(out, s[0]);
    } else {
      append_lower_at(out, s, i);
    }
  }
  return out;
}

std::u32string strip(std::u32string_view s, const std::optional<std::u32string>& chars, bool left, bool right) {
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end && in_chars(s[begin], chars)) ++begin;
  }
  if (right) {
    while (end > begin && in_chars(s[end - 1], chars)) --end;
  }
  return std::u32string(s.substr(begin, end - begin));
}

std::vector<std::u32string> split(std::u32string_view s, const std::optional<std::u32string>& sep, int64_t maxsplit) {
  std::vector<std::u32string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (!sep) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && is_space(s[i])) ++i;
      if (i == s.size()) break;
      if (static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(s.substr(i));  // the rest keeps its trailing whitespace, as in CPython
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_space(s[j])) ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  if (sep->empty()) throw DataError("empty separator");
  size_t start = 0;
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    size_t pos = s.find(*sep, start);
    if (pos == std::u32string_view::npos) break;
    out.emplace_back(s.substr(start, pos - start));
    start = pos + sep->size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::vector<std::u32string> rsplit(std::u32string_view s, const std::optional<std::u32string>& sep, int64_t maxsplit) {
  std::vector<std::u32string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (!sep) {
    size_t i = s.size();
    while (true) {
      while (i > 0 && is_space(s[i - 1])) --i;
      if (i == 0) break;
      if (static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(s.substr(0, i));  // the rest keeps its leading whitespace
        break;
      }
      size_t j = i;
      while (j > 0 && !is_space(s[j - 1])) --j;
      out.emplace_back(s.substr(j, i - j));
      i = j;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  if (sep->empty()) throw DataError("empty separator");
  size_t end = s.size();
  while (static_cast<int64_t>(out.size()) < maxsplit && end >= sep->size()) {
    size_t pos = s.rfind(*sep, end - sep->size());
    if (pos == std::u32string_view::npos) break;
    out.emplace_back(s.substr(pos + sep->size(), end - pos - sep->size()));
    end = pos;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::u32string> splitlines(std::u32string_view s, bool keepends) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && !is_line_break(s[j])) ++j;
    size_t eol = j;
    if (j < s.size()) {
      eol = (s[j] == U'\r' && j + 1 < s.size() && s[j + 1] == U'\n') ? j + 2 : j + 1;
    }
    out.emplace_back(s.substr(i, (keepends ? eol : j) - i));
    i = eol;
  }
  return out;
}

std::u32string replace(std::u32string_view s, std::u32string_view old, std::u32string_view with, int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::u32string out;
  if (old.empty()) {
    // Python inserts `with` before every character and at the end, up to count times.
    int64_t done = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (done < count) {
        out += with;
        ++done;
      }
      if (i < s.size()) out.push_back(s[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (done < count) {
    size_t pos = s.find(old, start);
    if (pos == std::u32string_view::npos) break;
    out += s.substr(start, pos - start);
    out += with;
    start = pos + old.size();
    ++done;
  }
  out += s.substr(start);
  return out;
}

int64_t find(std::u32string_view s, std::u32string_view sub, int64_t start, int64_t end, bool reverse) {
  if (start > end || static_cast<size_t>(end - start) < sub.size()) return -1;
  std::u32string_view window = s.substr(start, end - start);
  size_t pos = reverse ? window.rfind(sub) : window.find(sub);
  return pos == std::u32string_view::npos ? -1 : static_cast<int64_t>(pos) + start;
}

int64_t count(std::u32string_view s, std::u32string_view sub, int64_t start, int64_t end) {
  if (start > end || static_cast<size_t>(end - start) < sub.size()) return 0;
  std::u32string_view window = s.substr(start, end - start);
  if (sub.empty()) return static_cast<int64_t>(window.size()) + 1;
  int64_t n = 0;
  size_t pos = 0;
  while ((pos = window.find(sub, pos)) != std::u32string_view::npos) {
    ++n;
    pos += sub.size();
  }
  return n;
}

std::u32string center(std::u32string_view s, int64_t width, char32_t fill) {
  int64_t len = static_cast<int64_t>(s.size());
  if (width <= len) return std::u32string(s);
  int64_t marg = width - len;
  int64_t left = marg / 2 + (marg & width & 1);
  return std::u32string(left, fill) + std::u32string(s) + std::u32string(marg - left, fill);
}

std::string repr(std::string_view utf8) {
  std::u32string s = decode(utf8);
  bool has_single = s.find(U'\'') != std::u32string::npos;
  bool has_double = s.find(U'"') != std::u32string::npos;
  char32_t quote = has_single && !has_double ? U'"' : U'\'';
  std::string out(1, static_cast<char>(quote));
  static const char* kHex = "0123456789abcdef";
  for (char32_t c : s) {
    if (c == quote || c == U'\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else if (c < 0x7F || is_printable(c)) {
      append_utf8(out, c);
    } else {
      int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
      out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
      for (int k = digits - 1; k >= 0; --k) out.push_back(kHex[(c >> (4 * k)) & 15]);
    }
  }
  out.push_back(static_cast<char>(quote));
  return out;
}

}  // namespace troupe::tokenizers::jinja::detail
