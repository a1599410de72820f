// jinja2's lexer (jinja2/lexer.py) for transformers' environment, rule by rule; see jinja_lexer.h.
#include "tokenizers/jinja_lexer.h"

#include <charconv>
#include <optional>

#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Newlines as jinja2 normalises them: \r\n and \r become \n, and one trailing newline is dropped (unless
// keep_trailing_newline).
std::string normalize_newlines(std::string_view raw, bool keep_trailing_newline) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      out.push_back(raw[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length of the Unicode whitespace run (Python's \s) starting at byte `pos`.
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (!is_space(b)) break;
      ++i;
      continue;
    }
    size_t len = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4;
    if (i + len > s.size()) break;
    std::u32string c = decode(s.substr(i, len));
    if (c.size() != 1 || !is_space(c[0])) break;
    i += len;
  }
  return i - pos;
}

std::string rstrip_whitespace(std::string_view s) { return encode(strip(decode(s), std::nullopt, false, true)); }

bool all_whitespace(std::string_view s) { return !s.empty() && whitespace_run(s, 0) == s.size(); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's value[1:-1].encode("ascii", "backslashreplace").decode("unicode-escape"), as jinja2 reads a string.
std::string unescape(std::string_view inner, int line) {
  std::string ascii;
  for (char32_t c : decode(inner)) {
    if (c < 0x80) {
      ascii.push_back(static_cast<char>(c));
      continue;
    }
    static const char* kHex = "0123456789abcdef";
    int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
    ascii += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
    for (int k = digits - 1; k >= 0; --k) ascii.push_back(kHex[(c >> (4 * k)) & 15]);
  }
  std::string out;
  for (size_t i = 0; i < ascii.size(); ++i) {
    char c = ascii[i];
    if (c != '\\' || i + 1 == ascii.size()) {
      if (c == '\\') throw SyntaxError(line, "\\ at end of string");
      out.push_back(c);
      continue;
    }
    char e = ascii[++i];
    switch (e) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x':
      case 'u':
      case 'U': {
        int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        char32_t v = 0;
        for (int k = 0; k < n; ++k) {
          int h = i + 1 + k < ascii.size() ? hex_value(ascii[i + 1 + k]) : -1;
          if (h < 0) throw SyntaxError(line, std::string("truncated \\") + e + " escape in a string");
          v = v * 16 + h;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) throw SyntaxError(line, "illegal Unicode character");
        append_utf8(out, v);
        i += n;
        break;
      }
      case 'N': throw SyntaxError(line, "\\N{...} escapes are not supported");
      default:
        if (e >= '0' && e <= '7') {
          char32_t v = e - '0';
          for (int k = 0; k < 2 && i + 1 < ascii.size() && ascii[i + 1] >= '0' && ascii[i + 1] <= '7'; ++k) {
            v = v * 8 + (ascii[++i] - '0');
          }
          append_utf8(out, v);
        } else {
          out.push_back('\\');  // unknown escapes stay as they are
          out.push_back(e);
        }
    }
  }
  return out;
}

const char* const kOperators[] = {"**", "//", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                  "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options) : src_(std::move(source)), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) root();
    push(Tok::Eof, "", line_at(src_.size()));
    return std::move(tokens_);
  }

 private:
  // 1-based line of byte `pos` (counted incrementally; positions are mostly asked in increasing order).
  int line_at(size_t pos) {
    if (pos < line_pos_) {
      line_pos_ = 0;
      line_ = 1;
    }
    while (line_pos_ < pos) line_ += src_[line_pos_++] == '\n';
    return line_;
  }

  Token& push(Tok type, std::string text, int line) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = line;
    tokens_.push_back(std::move(t));
    return tokens_.back();
  }

  bool at(size_t pos, std::string_view s) const { return src_.compare(pos, s.size(), s) == 0; }

  // Text before a tag, stripped as jinja2's OptionalLStrip rule does.
  void emit_text(size_t begin, size_t end, char sign, bool lstrip_applies) {
    std::string text = src_.substr(begin, end - begin);
    if (sign == '-') {
      text = rstrip_whitespace(text);
    } else if (sign != '+' && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      bool line_starting = begin == 0 || src_[begin - 1] == '\n';
      if ((l_pos > 0 || line_starting) && all_whitespace(std::string_view(text).substr(l_pos))) text.resize(l_pos);
    }
    if (!text.empty()) push(Tok::Data, std::move(text), line_at(begin));
  }

  // A `{% raw %}` opener at pos: its length, or 0.
  size_t raw_begin(size_t pos) const {
    size_t i = pos + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i += whitespace_run(src_, i);
    if (!at(i, "raw")) return 0;
    i += 3;
    i += whitespace_run(src_, i);
    if (at(i, "-%}")) return i + 3 + whitespace_run(src_, i + 3) - pos;
    if (at(i, "%}")) return i + 2 - pos;
    return 0;
  }

  void root() {
    size_t i = pos_;
    while (true) {
      i = src_.find('{', i);
      if (i == std::string::npos || i + 1 >= src_.size()) {
        push(Tok::Data, src_.substr(pos_), line_at(pos_));
        pos_ = src_.size();
        return;
      }
      char k = src_[i + 1];
      if (k == '{' || k == '%' || k == '#') break;
      ++i;
    }
    char kind = src_[i + 1];
    char sign = i + 2 < src_.size() && (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : 0;
    size_t raw_len = kind == '%' ? raw_begin(i) : 0;
    emit_text(pos_, i, sign, kind != '{' && options_.lstrip_blocks);
    if (raw_len > 0) {
      pos_ = i + raw_len;
      raw_body(i);
    } else if (kind == '#') {
      comment(i, sign);
    } else {
      tag(i, kind, sign);
    }
  }

  void raw_body(size_t begin_pos) {
    size_t search = pos_;
    while (true) {
      size_t j = src_.find("{%", search);
      if (j == std::string::npos) throw SyntaxError(line_at(begin_pos), "Missing end of raw directive");
      size_t k = j + 2;
      char sign = k < src_.size() && (src_[k] == '-' || src_[k] == '+') ? src_[k] : 0;
      if (sign) ++k;
      k += whitespace_run(src_, k);
      if (at(k, "endraw")) {
        k += 6;
        k += whitespace_run(src_, k);
        size_t end = 0;
        if (at(k, "+%}")) {
          end = k + 3;
        } else if (at(k, "-%}")) {
          end = k + 3 + whitespace_run(src_, k + 3);
        } else if (at(k, "%}")) {
          end = k + 2 + (options_.trim_blocks && k + 2 < src_.size() && src_[k + 2] == '\n');
        }
        if (end > 0) {
          emit_text(pos_, j, sign, options_.lstrip_blocks);
          pos_ = end;
          return;
        }
      }
      search = j + 2;
    }
  }

  void comment(size_t begin, char sign) {
    size_t content = begin + 2 + (sign ? 1 : 0);
    size_t j = src_.find("#}", content);
    if (j == std::string::npos) throw SyntaxError(line_at(begin), "Missing end of comment tag");
    if (j > content && src_[j - 1] == '-') {
      pos_ = j + 2 + whitespace_run(src_, j + 2);
    } else if (j > content && src_[j - 1] == '+') {
      pos_ = j + 2;
    } else {
      pos_ = j + 2 + (options_.trim_blocks && j + 2 < src_.size() && src_[j + 2] == '\n');
    }
  }

  // The end of a tag at pos_ (length consumed), or 0.
  size_t tag_end(char kind) const {
    if (kind == '%') {
      if (at(pos_, "+%}")) return 3;
      if (at(pos_, "-%}")) return 3 + whitespace_run(src_, pos_ + 3);
      if (at(pos_, "%}")) return 2 + (options_.trim_blocks && pos_ + 2 < src_.size() && src_[pos_ + 2] == '\n');
      return 0;
    }
    if (at(pos_, "-}}")) return 3 + whitespace_run(src_, pos_ + 3);
    if (at(pos_, "}}")) return 2;
    return 0;
  }

  void tag(size_t begin, char kind, char sign) {
    push(kind == '%' ? Tok::BlockBegin : Tok::VarBegin, "", line_at(begin));
    pos_ = begin + 2 + (sign ? 1 : 0);
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size()) {
        throw SyntaxError(line_at(src_.size()),
                          std::string("unexpected end of template, expected '") +
                              (kind == '%' ? "end of statement block" : "end of print statement") + "'");
      }
      if (balance.empty()) {
        if (size_t n = tag_end(kind)) {
          push(kind == '%' ? Tok::BlockEnd : Tok::VarEnd, "", line_at(pos_));
          pos_ += n;
          return;
        }
      }
      if (size_t n = whitespace_run(src_, pos_)) {
        pos_ += n;
        continue;
      }
      expression_token(balance);
    }
  }

  // (\d+_)*\d+ at i: its end, or npos.
  size_t digits(size_t i) const {
    if (i >= src_.size() || !is_digit(src_[i])) return std::string::npos;
    while (true) {
      while (i < src_.size() && is_digit(src_[i])) ++i;
      if (i + 1 < src_.size() && src_[i] == '_' && is_digit(src_[i + 1])) {
        ++i;
        continue;
      }
      return i;
    }
  }

  std::optional<size_t> float_end() const {
    if (pos_ > 0 && src_[pos_ - 1] == '.') return std::nullopt;
    size_t i = digits(pos_);
    if (i == std::string::npos) return std::nullopt;
    auto exponent = [&](size_t j) -> size_t {
      if (j >= src_.size() || (src_[j] != 'e' && src_[j] != 'E')) return std::string::npos;
      ++j;
      if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
      return digits(j);
    };
    size_t frac = i < src_.size() && src_[i] == '.' ? digits(i + 1) : std::string::npos;
    if (frac != std::string::npos) {
      if (size_t e = exponent(frac); e != std::string::npos) return e;
    }
    if (size_t e = exponent(i); e != std::string::npos) return e;
    if (frac != std::string::npos) return frac;
    return std::nullopt;
  }

  std::optional<size_t> integer_end(int& base) const {
    char c = src_[pos_];
    if (!is_digit(c)) return std::nullopt;
    if (c == '0' && pos_ + 1 < src_.size()) {
      char p = src_[pos_ + 1] | 0x20;
      base = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 10;
      if (base != 10) {
        size_t i = pos_ + 2;
        auto ok = [&](char d) { return hex_value(d) >= 0 && hex_value(d) < base; };
        size_t start = i;
        while (i < src_.size()) {
          if (ok(src_[i])) {
            ++i;
          } else if (src_[i] == '_' && i + 1 < src_.size() && ok(src_[i + 1])) {
            i += 2;
          } else {
            break;
          }
        }
        if (i > start) return i;
        base = 10;
      }
    }
    base = 10;
    size_t i = pos_ + 1;
    auto more = [&](char d) { return c == '0' ? d == '0' : is_digit(d); };
    while (i < src_.size()) {
      if (more(src_[i])) {
        ++i;
      } else if (src_[i] == '_' && i + 1 < src_.size() && more(src_[i + 1])) {
        i += 2;
      } else {
        break;
      }
    }
    return i;
  }

  void number_token(size_t end, bool is_float, int base) {
    std::string text;
    for (size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    int line = line_at(pos_);
    Token& t = push(is_float ? Tok::Float : Tok::Integer, text, line);
    if (is_float) {
      std::from_chars(text.data(), text.data() + text.size(), t.fval);
    } else {
      const char* digits_begin = text.data() + (base == 10 ? 0 : 2);
      auto res = std::from_chars(digits_begin, text.data() + text.size(), t.ival, base);
      if (res.ec != std::errc()) throw SyntaxError(line, "integer literal " + text + " exceeds 64 bits");
    }
    pos_ = end;
  }

  void string_token() {
    char quote = src_[pos_];
    size_t i = pos_ + 1;
    while (i < src_.size() && src_[i] != quote) i += src_[i] == '\\' ? 2 : 1;
    int line = line_at(pos_);
    if (i >= src_.size()) throw SyntaxError(line, std::string("unexpected char '") + quote + "'");
    push(Tok::String, unescape(std::string_view(src_).substr(pos_ + 1, i - pos_ - 1), line), line);
    pos_ = i + 1;
  }

  void operator_token(std::vector<char>& balance) {
    for (const char* op : kOperators) {
      if (!at(pos_, op)) continue;
      std::string s = op;
      int line = line_at(pos_);
      if (s == "{" || s == "(" || s == "[") {
        balance.push_back(s == "{" ? '}' : s == "(" ? ')' : ']');
      } else if (s == "}" || s == ")" || s == "]") {
        if (balance.empty()) throw SyntaxError(line, "unexpected '" + s + "'");
        if (balance.back() != s[0]) {
          throw SyntaxError(line, "unexpected '" + s + "', expected '" + std::string(1, balance.back()) + "'");
        }
        balance.pop_back();
      }
      push(Tok::Op, s, line);
      pos_ += s.size();
      return;
    }
    unsigned char c = static_cast<unsigned char>(src_[pos_]);
    std::string shown = c < 0x80 ? std::string(1, static_cast<char>(c)) : "non-ASCII character";
    throw SyntaxError(line_at(pos_), "unexpected char '" + shown + "'");
  }

  void expression_token(std::vector<char>& balance) {
    if (auto end = float_end()) return number_token(*end, true, 10);
    int base = 10;
    if (auto end = integer_end(base)) return number_token(*end, false, base);
    if (is_name_start(src_[pos_])) {
      size_t i = pos_;
      while (i < src_.size() && is_name_char(src_[i])) ++i;
      push(Tok::Name, src_.substr(pos_, i - pos_), line_at(pos_));
      pos_ = i;
      return;
    }
    if (src_[pos_] == '\'' || src_[pos_] == '"') return string_token();
    operator_token(balance);
  }

  std::string src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  LexOptions options_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  return Lexer(normalize_newlines(source, options.keep_trailing_newline), options).run();
}

std::string describe(const Token& token) {
  switch (token.type) {
    case Tok::Name:
    case Tok::Op: return token.text;
    case Tok::String: return "string";
    case Tok::Integer: return "integer";
    case Tok::Float: return "float";
    case Tok::Data: return "template data / text";
    case Tok::VarBegin: return "begin of print statement";
    case Tok::VarEnd: return "end of print statement";
    case Tok::BlockBegin: return "begin of statement block";
    case Tok::BlockEnd: return "end of statement block";
    case Tok::Eof: return "end of template";
  }
  return "token";
}

}  // namespace troupe::tokenizers::jinja::detail
