// The lexer of Troupe's Jinja engine: jinja2's Lexer for the environment transformers uses (default delimiters,
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False), including its whitespace rules ({%- -%}, {%+ +%},
// lstrip only for block and comment tags and only when the text before the tag on its line is whitespace), raw
// blocks, Python string escapes and number literals. Not supported: line statements/comments (off in that
// environment) and non-ASCII identifiers (a clear error).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizers::jinja::detail {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // data, name, decoded string literal, or operator
  int64_t ival = 0;
  double fval = 0.0;
  int line = 1;
};

// A template that does not lex or parse; `line` is 1-based in the template source.
class SyntaxError : public std::runtime_error {
 public:
  SyntaxError(int line, const std::string& message) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

// The whitespace settings of a jinja2 Environment (defaults: transformers' chat-template environment).
struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// The tokens of `source`, ending with Eof. Throws SyntaxError.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options = {});

// A human name for a token in error messages: a name's text, an operator, "end of statement block", ...
std::string describe(const Token& token);

}  // namespace troupe::tokenizers::jinja::detail
