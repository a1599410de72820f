#define PCRE2_CODE_UNIT_WIDTH 8
#include "metrics/py_regex.h"

#include <fmt/format.h>
#include <pcre2.h>

#include <utility>

#include "core/errors.h"

namespace troupe::metrics {
namespace {

// Python's str.isspace() set, which its re uses for \s in str patterns, as inclusive ranges.
constexpr std::pair<char32_t, char32_t> kPySpace[] = {
    {0x09, 0x0D},     {0x1C, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}};

std::string range_text(char32_t lo, char32_t hi) {
  return lo == hi ? fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(lo))
                  : fmt::format("\\x{{{:X}}}-\\x{{{:X}}}", static_cast<uint32_t>(lo), static_cast<uint32_t>(hi));
}

std::string space_members() {
  std::string out;
  for (const auto& [lo, hi] : kPySpace) out += range_text(lo, hi);
  return out;
}

// Everything but the space set (the surrogates excluded: not characters in UTF-8 mode).
std::string non_space_members() {
  std::string out;
  char32_t next = 0;
  auto add = [&](char32_t lo, char32_t hi) {
    if (lo > hi) return;
    if (lo <= 0xDFFF && hi >= 0xD800) {  // split around the surrogates
      if (lo < 0xD800) out += range_text(lo, 0xD7FF);
      if (hi > 0xDFFF) out += range_text(0xE000, hi);
      return;
    }
    out += range_text(lo, hi);
  };
  for (const auto& [lo, hi] : kPySpace) {
    if (lo > next) add(next, lo - 1);
    next = hi + 1;
  }
  add(next, 0x10FFFF);
  return out;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return std::string(reinterpret_cast<const char*>(buf));
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

std::string python_regex_to_pcre2(const std::string& p) {
  static const std::string space = space_members(), non_space = non_space_members();
  std::string out;
  bool in_class = false;
  size_t i = 0;
  auto fail = [&](const std::string& what) {
    throw ConfigError(fmt::format("regular expression '{}', offset {}: {}", p, i, what));
  };
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) fail("a pattern may not end in a backslash");
      const char e = p[i + 1];
      if (e == 's') {
        out += in_class ? space : "[" + space + "]";
      } else if (e == 'S') {
        out += in_class ? non_space : "[^" + space + "]";
      } else if (e == 'Z' && !in_class) {
        out += "\\z";
      } else if (e == 'u' || e == 'U') {
        const size_t digits = e == 'u' ? 4 : 8;
        if (i + 2 + digits > p.size()) fail(fmt::format("\\{} needs {} hex digits", e, digits));
        const std::string hex = p.substr(i + 2, digits);
        for (char h : hex) {
          if (!is_hex(h)) fail(fmt::format("\\{} needs {} hex digits", e, digits));
        }
        out += "\\x{" + hex + "}";
        i += 2 + digits;
        continue;
      } else if (e == 'N') {
        fail("\\N{name} escapes are not supported");
      } else {
        out += p.substr(i, 2);
      }
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ] is a member
      continue;
    }
    if (c == '(' && p.compare(i, 3, "(?a") == 0) fail("the ASCII flag (?a) is not supported");
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {  // {,n} = {0,n}
      size_t j = i + 2;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
      if (j > i + 2 && j < p.size() && p[j] == '}') {
        out += "{0," + p.substr(i + 2, j - i - 2) + "}";
        i = j + 1;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

struct PyRegex::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {
// pcre2_match through the JIT code when there is some (same matches, several times faster on long texts: the
// cleaning pipeline's mojibake and PII patterns), falling back to the interpreter if the JIT runs out of its stack.
int match(const pcre2_code* code, std::string_view text, size_t pos, uint32_t options, pcre2_match_data* data) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc = pcre2_match(code, subject, text.size(), pos, options, data, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
    rc = pcre2_match(code, subject, text.size(), pos, options | PCRE2_NO_JIT, data, nullptr);
  return rc;
}
}  // namespace

PyRegex::PyRegex(const std::string& pattern) : pattern_(pattern) {
  const std::string rewritten = python_regex_to_pcre2(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto compiled = std::make_shared<Compiled>();
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset, nullptr);
  if (compiled->code == nullptr) {
    throw ConfigError(fmt::format("regular expression '{}' does not compile: {} (at offset {} of its PCRE2 form '{}')",
                                  pattern, pcre2_message(error_code), error_offset, rewritten));
  }
  pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);  // best effort: without JIT support the interpreter runs
  compiled_ = std::move(compiled);
}

int PyRegex::groups() const {
  uint32_t n = 0;
  pcre2_pattern_info(compiled_->code, PCRE2_INFO_CAPTURECOUNT, &n);
  return static_cast<int>(n);
}

// Calls f(ovector, pairs) for each match, in Python's order.
template <class F>
void PyRegex::for_each_match(std::string_view text, F&& f) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr), &pcre2_match_data_free);
  if (!data) throw std::bad_alloc();
  size_t pos = 0;
  bool must_advance = false;  // the last match was empty and ended here: the next may not be empty here
  while (pos <= text.size()) {
    const int rc = match(compiled_->code, text, pos, must_advance ? PCRE2_NOTEMPTY_ATSTART : 0, data.get());
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) throw DataError(fmt::format("regular expression '{}': match failed: {}", pattern_, pcre2_message(rc)));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
    f(ov, pcre2_get_ovector_count(data.get()));
    must_advance = ov[0] == ov[1];
    pos = ov[1];
  }
}

std::vector<std::vector<std::string>> PyRegex::findall(std::string_view text) const {
  const int n = groups();
  std::vector<std::vector<std::string>> out;
  for_each_match(text, [&](const PCRE2_SIZE* ov, uint32_t pairs) {
    std::vector<std::string> m;
    if (n == 0) {
      m.emplace_back(text.substr(ov[0], ov[1] - ov[0]));
    } else {
      for (int g = 1; g <= n; ++g) {
        const auto k = static_cast<uint32_t>(g);
        const bool set = k < pairs && ov[2 * k] != PCRE2_UNSET;
        m.emplace_back(set ? text.substr(ov[2 * k], ov[2 * k + 1] - ov[2 * k]) : std::string_view());
      }
    }
    out.push_back(std::move(m));
  });
  return out;
}

std::string PyRegex::substitute(std::string_view text,
                                const std::function<std::string(std::string_view)>& replace) const {
  std::string out;
  out.reserve(text.size());
  size_t kept = 0;
  for_each_match(text, [&](const PCRE2_SIZE* ov, uint32_t) {
    out.append(text.substr(kept, ov[0] - kept));
    out += replace(text.substr(ov[0], ov[1] - ov[0]));
    kept = ov[1];
  });
  out.append(text.substr(kept));
  return out;
}

std::string PyRegex::remove_all(std::string_view text) const {
  return substitute(text, [](std::string_view) { return std::string(); });
}

bool PyRegex::search(std::string_view text) const {
  bool found = false;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr), &pcre2_match_data_free);
  const int rc = match(compiled_->code, text, 0, 0, data.get());
  if (rc >= 0) found = true;
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    throw DataError(fmt::format("regular expression '{}': match failed: {}", pattern_, pcre2_message(rc)));
  }
  return found;
}

}  // namespace troupe::metrics
