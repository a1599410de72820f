// The expression half of Troupe's Jinja parser (jinja2/parser.py's parse_expression and everything under it, plus
// assignment targets) over the lexer's tokens; the statement half (jinja_parser.cpp) derives from it. Internal to
// the engine.
#pragma once

#include <string>
#include <vector>

#include "tokenizers/jinja_ast.h"
#include "tokenizers/jinja_lexer.h"

namespace troupe::tokenizers::jinja::detail {

class ExprParser {
 public:
  explicit ExprParser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

 protected:
  // ---- token stream ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[std::min(pos_ + 1, toks_.size() - 1)]; }
  Token next() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_name(const std::string& v) const { return cur().type == Tok::Name && cur().text == v; }
  bool is_op(const std::string& v) const { return cur().type == Tok::Op && cur().text == v; }
  bool skip_name(const std::string& v) {
    if (!is_name(v)) return false;
    next();
    return true;
  }
  bool skip_op(const std::string& v) {
    if (!is_op(v)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& msg, int line = 0) const {
    throw SyntaxError(line > 0 ? line : cur().line, msg);
  }
  [[noreturn]] void fail_expected(const std::string& what) const {
    if (cur().type == Tok::Eof) fail("unexpected end of template, expected '" + what + "'");
    fail("expected '" + what + "', got '" + describe(cur()) + "'");
  }
  Token expect_op(const std::string& v) {
    if (!is_op(v)) fail_expected(v);
    return next();
  }
  Token expect_name(const std::string& v = "") {
    if (cur().type != Tok::Name || (!v.empty() && cur().text != v)) fail_expected(v.empty() ? "name" : v);
    return next();
  }
  void expect(Tok type) {
    if (cur().type != type) {
      Token t;
      t.type = type;
      fail_expected(describe(t));
    }
    next();
  }

  static ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- assignment targets ----
  Target to_target(const Expr& e);
  Target parse_assign_target(bool with_tuple, bool name_only, std::vector<std::string> extra_end, bool with_ns);
  // ---- expressions ----
  // Guards the recursion of the descent (Python's parser would hit its recursion limit too).
  struct Nesting {
    ExprParser& p;
    explicit Nesting(ExprParser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("expression or block nested too deeply");
    }
    ~Nesting() { --p.depth_; }
  };
  static constexpr int kMaxNesting = 300;
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprKind kind, ExprPtr a, ExprPtr b, int line);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr arithmetic(ExprPtr left, BinOp op, ExprPtr right, int line);
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary(bool with_ns);
  bool is_tuple_end(const std::vector<std::string>& extra_end) const;
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parens, bool with_ns = false);
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  CallArgs parse_call_args();
  ExprPtr parse_call(ExprPtr node);
  std::string dotted_name();
  ExprPtr parse_filter(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);

  std::vector<Token> toks_;
  size_t pos_ = 0;
  bool soft_ = false;         // inside an if or conditional expression (jinja2's soft frame)
  bool loop_target_ = false;  // parsing a for loop's target
  int depth_ = 0;             // recursion depth of the descent
};

}  // namespace troupe::tokenizers::jinja::detail
