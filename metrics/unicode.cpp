#include "metrics/unicode.h"

#include <fmt/format.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "core/errors.h"

namespace troupe::metrics {

std::u32string decode_utf8(std::string_view text, std::string_view what) {
  std::u32string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto bad = [&](size_t at) { throw DataError(fmt::format("{}: invalid UTF-8 at byte {}", what, at)); };
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int len = 0;
    char32_t c = 0;
    if ((b & 0xE0) == 0xC0) {
      len = 2;
      c = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      c = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      c = b & 0x07;
    } else {
      bad(i);
    }
    if (i + len > n) bad(i);
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) bad(i);
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    const bool overlong = (len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000);
    if (overlong || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) bad(i);
    out.push_back(c);
    i += len;
  }
  return out;
}

bool is_space(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace table (Unicode 14).
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2000:
    case 0x2001:
    case 0x2002:
    case 0x2003:
    case 0x2004:
    case 0x2005:
    case 0x2006:
    case 0x2007:
    case 0x2008:
    case 0x2009:
    case 0x200A:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return false;
  }
}

bool is_alnum(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  // Python: isalpha (categories L*) or isdecimal/isdigit/isnumeric (a numeric type).
  return u_isalpha(static_cast<UChar32>(c)) ||
         u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}

bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

std::vector<std::u32string> split_whitespace(std::u32string_view text) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& w : split_whitespace(decode_utf8(text))) out.push_back(encode_utf8(w));
  return out;
}

std::string strip(std::string_view text) {
  const std::u32string cps = decode_utf8(text);
  size_t b = 0, e = cps.size();
  while (b < e && is_space(cps[b])) ++b;
  while (e > b && is_space(cps[e - 1])) --e;
  return encode_utf8(std::u32string_view(cps).substr(b, e - b));
}

std::u32string lower(std::u32string_view text) {
  // Fast path: ASCII.
  bool ascii = true;
  for (char32_t c : text) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    std::u32string out(text);
    for (auto& c : out) {
      if (c >= 'A' && c <= 'Z') c += 32;
    }
    return out;
  }
  // ICU's root-locale full lowercase mapping (with the Final_Sigma context), as Python's str.lower().
  std::u16string u16;
  u16.reserve(text.size());
  for (char32_t c : text) {
    if (c >= 0x10000) {
      u16.push_back(static_cast<char16_t>(0xD800 + ((c - 0x10000) >> 10)));
      u16.push_back(static_cast<char16_t>(0xDC00 + ((c - 0x10000) & 0x3FF)));
    } else {
      u16.push_back(static_cast<char16_t>(c));
    }
  }
  std::u16string result(u16.size() * 3 + 4, u'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t len =
      u_strToLower(reinterpret_cast<UChar*>(result.data()), static_cast<int32_t>(result.size()),
                   reinterpret_cast<const UChar*>(u16.data()), static_cast<int32_t>(u16.size()), "", &status);
  if (U_FAILURE(status)) throw Error(fmt::format("lowercasing failed: {}", u_errorName(status)));
  std::u32string out;
  out.reserve(len);
  for (int32_t i = 0; i < len; ++i) {
    const char16_t u = result[i];
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < len) {
      out.push_back(0x10000 + ((static_cast<char32_t>(u) - 0xD800) << 10) + (result[i + 1] - 0xDC00));
      ++i;
    } else {
      out.push_back(u);
    }
  }
  return out;
}

std::string lower(std::string_view text) {
  bool ascii = true;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    std::string out(text);
    for (auto& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return out;
  }
  return encode_utf8(lower(decode_utf8(text)));
}

}  // namespace troupe::metrics
