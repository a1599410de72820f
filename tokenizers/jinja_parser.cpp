// jinja2's recursive-descent parser (jinja2/parser.py), function by function; see jinja_parser.h.
#include "tokenizers/jinja_parser.h"

#include <functional>
#include <set>

#include "tokenizers/jinja_expr_parser.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

// An open block: the tags that end or continue it, the tag that closes it, and where it opened.
struct OpenBlock {
  std::vector<std::string> end_tags;
  std::string closer;
  std::string opener;
  int line;
};

bool uses_name(const Body& body, const std::string& name);

bool expr_uses_name(const Expr* e, const std::string& name) {
  if (e == nullptr) return false;
  if (e->kind == ExprKind::Name && e->name == name) return true;
  for (const auto& item : e->items) {
    if (expr_uses_name(item.get(), name)) return true;
  }
  for (const Expr* sub :
       {e->a.get(), e->b.get(), e->c.get(), e->d.get(), e->call.dyn_args.get(), e->call.dyn_kwargs.get()}) {
    if (expr_uses_name(sub, name)) return true;
  }
  for (const auto& arg : e->call.args) {
    if (expr_uses_name(arg.get(), name)) return true;
  }
  for (const auto& kw : e->call.kwargs) {
    if (expr_uses_name(kw.value.get(), name)) return true;
  }
  return false;
}

bool uses_name(const Body& body, const std::string& name) {
  for (const auto& s : body) {
    for (const auto& part : s->parts) {
      if (expr_uses_name(part.expr.get(), name)) return true;
    }
    for (const auto& [test, branch] : s->branches) {
      if (expr_uses_name(test.get(), name) || uses_name(branch, name)) return true;
    }
    for (const auto& v : s->values) {
      if (expr_uses_name(v.get(), name)) return true;
    }
    for (const auto& d : s->signature.defaults) {
      if (expr_uses_name(d.get(), name)) return true;
    }
    if (expr_uses_name(s->expr.get(), name) || expr_uses_name(s->filter.get(), name) || uses_name(s->body, name) ||
        uses_name(s->else_body, name)) {
      return true;
    }
  }
  return false;
}

class Parser : public ExprParser {
 public:
  explicit Parser(std::vector<Token> tokens) : ExprParser(std::move(tokens)) {}

  Body parse_template() { return subparse(nullptr); }

 private:
  Body subparse(const OpenBlock* block) {
    Body body;
    std::unique_ptr<Stmt> output;
    auto flush = [&] {
      if (output) body.push_back(std::move(output));
    };
    auto out = [&](int line) -> Stmt& {
      if (!output) {
        output = std::make_unique<Stmt>();
        output->kind = StmtKind::Output;
        output->line = line;
      }
      return *output;
    };
    while (cur().type != Tok::Eof) {
      const Token& t = cur();
      if (t.type == Tok::Data) {
        out(t.line).parts.push_back(OutputPart{t.text, nullptr});
        next();
      } else if (t.type == Tok::VarBegin) {
        int line = t.line;
        next();
        ExprPtr e = parse_tuple(false, true, {}, false);
        expect(Tok::VarEnd);
        out(line).parts.push_back(OutputPart{"", std::move(e)});
      } else if (t.type == Tok::BlockBegin) {
        flush();
        next();
        if (block != nullptr && cur().type == Tok::Name) {
          for (const auto& end : block->end_tags) {
            if (cur().text == end) return body;
          }
        }
        body.push_back(parse_statement());
        expect(Tok::BlockEnd);
      } else {
        fail("unexpected '" + describe(t) + "'");
      }
    }
    flush();
    if (block != nullptr) {
      fail("unexpected end of template (expected '" + block->closer + "' to close '" + block->opener + "' from line " +
           std::to_string(block->line) + ")");
    }
    return body;
  }

  // The body of a block, ending at one of `end_tags` (left as the current token, or consumed with drop_needle).
  Body parse_statements(std::vector<std::string> end_tags, const std::string& closer, const std::string& opener,
                        int line, bool drop_needle) {
    skip_op(":");
    expect(Tok::BlockEnd);
    OpenBlock block{std::move(end_tags), closer, opener, line};
    blocks_.push_back(block);
    Body body = subparse(&block);
    blocks_.pop_back();
    if (drop_needle) next();
    return body;
  }

  std::unique_ptr<Stmt> stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  std::unique_ptr<Stmt> parse_statement() {
    Nesting guard(*this);
    if (cur().type != Tok::Name) fail("tag name expected");
    const std::string tag = cur().text;
    int line = cur().line;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") return parse_print();
    if (tag == "generation") {
      next();
      auto s = stmt(StmtKind::Generation, line);
      s->body = parse_statements({"endgeneration"}, "endgeneration", "generation", line, true);
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside a loop", line);
      next();
      return stmt(tag == "break" ? StmtKind::Break : StmtKind::Continue, line);
    }
    static const std::set<std::string> kUnsupported = {"extends", "include",    "import", "from",
                                                       "block",   "autoescape", "raw"};
    if (kUnsupported.count(tag)) fail("the '" + tag + "' statement is not supported in chat templates", line);
    static const std::set<std::string> kClosers = {"elif",    "else",          "endif",   "endfor",
                                                   "endset",  "endmacro",      "endcall", "endfilter",
                                                   "endwith", "endgeneration", "endraw",  "endblock"};
    std::string msg = (kClosers.count(tag) ? "unexpected '" : "unknown tag '") + tag + "'";
    if (!blocks_.empty()) msg += " (expected '" + blocks_.back().closer + "')";
    fail(msg, line);
  }

  std::unique_ptr<Stmt> parse_if() {
    int line = expect_name("if").line;
    auto s = stmt(StmtKind::If, line);
    bool outer_soft = soft_;
    soft_ = true;
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, "endif", "if", line, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      Token t = next();
      if (t.text == "elif") continue;
      if (t.text == "else") s->else_body = parse_statements({"endif"}, "endif", "if", line, true);
      break;
    }
    soft_ = outer_soft;
    return s;
  }

  std::unique_ptr<Stmt> parse_for() {
    int line = expect_name("for").line;
    auto s = stmt(StmtKind::For, line);
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    bool outer_soft = soft_;
    soft_ = false;
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported in chat templates");
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, "endfor", "for", line, false);
    --loop_depth_;
    if (next().text == "else") s->else_body = parse_statements({"endfor"}, "endfor", "for", line, true);
    soft_ = outer_soft;
    return s;
  }

  std::unique_ptr<Stmt> parse_set() {
    int line = next().line;
    Target target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      auto s = stmt(StmtKind::Set, line);
      s->target = std::move(target);
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    auto s = stmt(StmtKind::SetBlock, line);
    s->target = std::move(target);
    s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, "endset", "set", line, true);
    return s;
  }

  void parse_signature(Signature& sig) {
    expect_op("(");
    while (!is_op(")")) {
      if (!sig.params.empty()) expect_op(",");
      sig.params.push_back(expect_name().text);
      if (skip_op("=")) {
        sig.defaults.push_back(parse_expression(true));
      } else if (!sig.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  void finish_signature(Signature& sig, const Body& body) {
    sig.catch_varargs = uses_name(body, "varargs");
    sig.catch_kwargs = uses_name(body, "kwargs");
    sig.caller = uses_name(body, "caller");
  }

  // A macro or call-block body: its own frame (no soft filters, no enclosing loop for break/continue).
  Body parse_function_body(const std::string& closer, const std::string& opener, int line) {
    bool outer_soft = soft_;
    int outer_loops = loop_depth_;
    soft_ = false;
    loop_depth_ = 0;
    Body body = parse_statements({closer}, closer, opener, line, true);
    soft_ = outer_soft;
    loop_depth_ = outer_loops;
    return body;
  }

  std::unique_ptr<Stmt> parse_macro() {
    int line = next().line;
    auto s = stmt(StmtKind::Macro, line);
    s->name = expect_name().text;
    parse_signature(s->signature);
    s->body = parse_function_body("endmacro", "macro", line);
    finish_signature(s->signature, s->body);
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block() {
    int line = next().line;
    auto s = stmt(StmtKind::CallBlock, line);
    if (is_op("(")) parse_signature(s->signature);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) fail("expected call", line);
    s->body = parse_function_body("endcall", "call", line);
    finish_signature(s->signature, s->body);
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block() {
    int line = next().line;
    auto s = stmt(StmtKind::FilterBlock, line);
    bool outer_soft = soft_;
    soft_ = false;
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, "endfilter", "filter", line, true);
    soft_ = outer_soft;
    return s;
  }

  std::unique_ptr<Stmt> parse_with() {
    int line = next().line;
    auto s = stmt(StmtKind::With, line);
    bool outer_soft = soft_;
    soft_ = false;
    while (cur().type != Tok::BlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}, false));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, "endwith", "with", line, true);
    soft_ = outer_soft;
    return s;
  }

  std::unique_ptr<Stmt> parse_print() {
    int line = next().line;
    auto s = stmt(StmtKind::Output, line);
    while (cur().type != Tok::BlockEnd) {
      if (!s->parts.empty()) expect_op(",");
      s->parts.push_back(OutputPart{"", parse_expression(true)});
    }
    return s;
  }

  std::vector<OpenBlock> blocks_;
  int loop_depth_ = 0;  // enclosing for loops in this macro (break/continue need one)
};

}  // namespace

namespace {

// Filters that take jinja2's context (@pass_context): their Filter nodes never fold.
bool context_filter(const std::string& name) {
  return name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr";
}

// Marks the expressions jinja2 may fold at compile time (Expr.as_const can succeed): no names, calls, context filters
// or unknown filters/tests, except in the branches of a conditional or and/or that folding may skip. Returns the
// node's flag.
bool mark_foldable(Expr* e) {
  if (e == nullptr) return true;
  bool children = true;
  for (auto& item : e->items) children &= mark_foldable(item.get());
  bool a = mark_foldable(e->a.get());
  bool b = mark_foldable(e->b.get());
  bool c = mark_foldable(e->c.get());
  children &=
      mark_foldable(e->d.get()) & mark_foldable(e->call.dyn_args.get()) & mark_foldable(e->call.dyn_kwargs.get());
  for (auto& arg : e->call.args) children &= mark_foldable(arg.get());
  for (auto& kw : e->call.kwargs) children &= mark_foldable(kw.value.get());
  bool ok = children && a && b && c;
  switch (e->kind) {
    case ExprKind::Name:
    case ExprKind::Call: ok = false; break;
    case ExprKind::Filter: ok = ok && e->a != nullptr && is_known_filter(e->name) && !context_filter(e->name); break;
    case ExprKind::Test: ok = ok && is_known_test(e->name); break;
    case ExprKind::CondExpr: ok = a && (b || (e->c != nullptr && c)); break;  // b if a else c
    case ExprKind::And:
    case ExprKind::Or: ok = a; break;  // the right operand may go unevaluated
    default: break;
  }
  e->foldable = ok;
  return ok;
}

void mark_foldable(Body& body) {
  for (auto& s : body) {
    for (auto& part : s->parts) mark_foldable(part.expr.get());
    for (auto& [test, branch] : s->branches) {
      mark_foldable(test.get());
      mark_foldable(branch);
    }
    for (auto& v : s->values) mark_foldable(v.get());
    for (auto& d : s->signature.defaults) mark_foldable(d.get());
    mark_foldable(s->expr.get());
    mark_foldable(s->filter.get());
    mark_foldable(s->body);
    mark_foldable(s->else_body);
  }
}

}  // namespace

Body parse(std::string_view source, const LexOptions& options) {
  Body body = Parser(tokenize(source, options)).parse_template();
  mark_foldable(body);
  return body;
}

}  // namespace troupe::tokenizers::jinja::detail
