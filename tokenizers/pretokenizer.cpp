// Implementation of tokenizers/pretokenizer.h on PCRE2 (8-bit, UTF + UCP + MATCH_INVALID_UTF, JIT).
// Not thread-hostile: per-thread match data and JIT stack are kept in thread_local storage.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizers/pretokenizer.h"

#include <pcre2.h>

#include "core/errors.h"

namespace troupe::tokenizers {

namespace {

// Unicode White_Space, the set Rust's regex (and so tiktoken) uses for \s. PCRE2's UCP \s differs
// slightly (it adds U+180E), so the pattern is rewritten to this explicit list.
constexpr const char* kWhiteSpaceMembers =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return std::string(reinterpret_cast<const char*>(buf));
}

// Per-thread scratch reused across split() calls: one match block and a JIT stack large enough
// for long whitespace runs under the (?!\S) lookahead.
struct ThreadScratch {
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* match_context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadScratch() {
    match_data = pcre2_match_data_create(32, nullptr);
    match_context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (match_data == nullptr || match_context == nullptr || jit_stack == nullptr) {
      throw std::bad_alloc();
    }
    pcre2_jit_stack_assign(match_context, nullptr, jit_stack);
  }
  ~ThreadScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(match_context);
    pcre2_match_data_free(match_data);
  }
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;
};

ThreadScratch& thread_scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

size_t next_char_boundary(std::string_view text, size_t pos) {
  ++pos;
  while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
  return pos;
}

}  // namespace

struct Pretokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

namespace detail {

std::string rewrite_whitespace_classes(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[++i];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpaceMembers) : "[" + std::string(kWhiteSpaceMembers) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceMembers) + "]";
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ']'
    } else if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t end = pattern.find(":]", i + 2);  // POSIX class like [:alpha:]
      if (end != std::string::npos) {
        out.append(pattern, i + 1, end + 2 - (i + 1));
        i = end + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

}  // namespace detail

Pretokenizer::Pretokenizer(const std::string& pattern) : pattern_(pattern) {
  const std::string rewritten = detail::rewrite_whitespace_classes(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto compiled = std::make_shared<Compiled>();
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset, nullptr);
  if (compiled->code == nullptr) {
    throw ConfigError("pretokenizer pattern does not compile at offset " + std::to_string(error_offset) + ": " +
                      pcre2_message(error_code) + " (pattern: " + pattern + ")");
  }
  // JIT is an optimisation only; the interpreter gives identical results when it is unavailable.
  compiled->jit = pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE) == 0;
  compiled_ = std::move(compiled);
}

namespace {
// Calls f(start, end) for each match of `compiled` in `text`, left to right, empty ones included; after an empty
// match the search steps one character on, as Rust's find_iter does. The one match loop of split() and matches().
template <class Compiled, class F>
void for_each_match(const Compiled& compiled, std::string_view text, F&& f) {
  ThreadScratch& scratch = thread_scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  for (size_t pos = 0; pos < n;) {
    const int rc = compiled.jit
                       ? pcre2_jit_match(compiled.code, subject, n, pos, 0, scratch.match_data, scratch.match_context)
                       : pcre2_match(compiled.code, subject, n, pos, 0, scratch.match_data, scratch.match_context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw DataError("pretokenizer match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.match_data);
    const size_t start = ov[0];
    const size_t end = ov[1];
    f(start, end);
    pos = end > start ? end : next_char_boundary(text, start);
  }
}
}  // namespace

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  size_t gap_start = 0;  // first byte not yet placed in a piece
  for_each_match(*compiled_, text, [&](size_t start, size_t end) {
    if (start > gap_start) pieces.push_back(text.substr(gap_start, start - gap_start));  // invalid UTF-8
    if (end > start) {
      pieces.push_back(text.substr(start, end - start));
      gap_start = end;
    } else {
      gap_start = start;  // an empty match: the character stepped over joins the next gap
    }
  });
  if (gap_start < text.size()) pieces.push_back(text.substr(gap_start));
}

void Pretokenizer::matches(std::string_view text, std::vector<std::pair<size_t, size_t>>& spans) const {
  for_each_match(*compiled_, text, [&](size_t start, size_t end) {
    if (end > start) spans.emplace_back(start, end);
  });
}

}  // namespace troupe::tokenizers
