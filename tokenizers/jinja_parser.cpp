// jinja2's recursive-descent parser (jinja2/parser.py), function by function; see jinja_parser.h.
#include "tokenizers/jinja_parser.h"

#include <functional>
#include <set>

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

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse_template() {
    Body body = subparse(nullptr);
    return body;
  }

 private:
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

  // ---- statements ----
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

  // ---- assignment targets ----
  Target to_target(const Expr& e) {
    Target t;
    t.line = e.line;
    if (e.kind == ExprKind::Name) {
      t.name = e.name;
      if (t.name == "loop" && loop_target_) fail("Can't assign to special loop variable in for-loop target", e.line);
      return t;
    }
    if (e.kind == ExprKind::Tuple) {
      t.kind = Target::Kind::Tuple;
      for (const auto& item : e.items) t.items.push_back(to_target(*item));
      return t;
    }
    if (e.kind == ExprKind::GetAttr && e.a && e.a->kind == ExprKind::Name && e.soft) {
      t.kind = Target::Kind::NsAttr;  // parse_primary(with_namespace) marks ns.attr with `soft`
      t.name = e.a->name;
      t.attr = e.name;
      return t;
    }
    fail(e.kind == ExprKind::Const ? "can't assign to 'const'" : "can't assign to this expression", e.line);
  }

  Target parse_assign_target(bool with_tuple, bool name_only, std::vector<std::string> extra_end, bool with_ns) {
    if (name_only) {
      Token t = expect_name();
      Target target;
      target.name = t.text;
      target.line = t.line;
      return target;
    }
    loop_target_ = !extra_end.empty() && extra_end[0] == "in";
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false, with_ns) : parse_primary(with_ns);
    Target target = to_target(*e);
    loop_target_ = false;
    return target;
  }

  // ---- expressions ----
  // Guards the recursion of the descent (Python's parser would hit its recursion limit too).
  struct Nesting {
    Parser& p;
    explicit Nesting(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("expression or block nested too deeply");
    }
    ~Nesting() { --p.depth_; }
  };
  static constexpr int kMaxNesting = 300;

  ExprPtr parse_expression(bool with_condexpr) {
    Nesting guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      bool outer_soft = soft_;
      soft_ = true;
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      soft_ = outer_soft;
      auto e = make(ExprKind::CondExpr, line);
      e->a = std::move(expr2);
      e->b = std::move(expr1);
      e->c = std::move(expr3);
      expr1 = std::move(e);
      line = cur().line;
    }
    return expr1;
  }

  ExprPtr binary(ExprKind kind, ExprPtr a, ExprPtr b, int line) {
    auto e = make(kind, line);
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      left = binary(ExprKind::Or, std::move(left), parse_and(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      left = binary(ExprKind::And, std::move(left), parse_not(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      int line = next().line;
      auto e = make(ExprKind::Not, line);
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr expr = parse_math1();
    auto e = make(ExprKind::Compare, line);
    e->items.push_back(std::move(expr));
    static const std::vector<std::pair<std::string, CmpOp>> kOps = {
        {"==", CmpOp::Eq}, {"!=", CmpOp::Ne}, {"<", CmpOp::Lt}, {"<=", CmpOp::Le}, {">", CmpOp::Gt}, {">=", CmpOp::Ge}};
    while (true) {
      bool matched = false;
      for (const auto& [text, op] : kOps) {
        if (is_op(text)) {
          next();
          e->cmp_ops.push_back(op);
          matched = true;
          break;
        }
      }
      if (!matched) {
        if (skip_name("in")) {
          e->cmp_ops.push_back(CmpOp::In);
        } else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
          next();
          next();
          e->cmp_ops.push_back(CmpOp::NotIn);
        } else {
          break;
        }
      }
      e->items.push_back(parse_math1());
      e->line = cur().line;
    }
    if (e->cmp_ops.empty()) return std::move(e->items[0]);
    return e;
  }

  ExprPtr arithmetic(ExprPtr left, BinOp op, ExprPtr right, int line) {
    auto e = binary(ExprKind::Binary, std::move(left), std::move(right), line);
    e->op = op;
    return e;
  }

  ExprPtr parse_math1() {
    int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinOp op = next().text == "+" ? BinOp::Add : BinOp::Sub;
      left = arithmetic(std::move(left), op, parse_concat(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::Concat, line);
    e->items.push_back(std::move(first));
    while (skip_op("~")) e->items.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string t = next().text;
      BinOp op = t == "*" ? BinOp::Mul : t == "/" ? BinOp::Div : t == "//" ? BinOp::FloorDiv : BinOp::Mod;
      left = arithmetic(std::move(left), op, parse_pow(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = arithmetic(std::move(left), BinOp::Pow, parse_unary(true), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting guard(*this);
    int line = cur().line;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      bool neg = next().text == "-";
      node = make(neg ? ExprKind::Neg : ExprKind::Pos, line);
      node->a = parse_unary(false);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_ns) {
    const Token& t = cur();
    int line = t.line;
    if (t.type == Tok::Name) {
      std::string v = next().text;
      if (v == "true" || v == "True" || v == "false" || v == "False") {
        auto e = make(ExprKind::Const, line);
        e->constant = Value::boolean(v == "true" || v == "True");
        return e;
      }
      if (v == "none" || v == "None") {
        auto e = make(ExprKind::Const, line);
        e->constant = Value::none();
        return e;
      }
      auto e = make(ExprKind::Name, line);
      e->name = v;
      if (with_ns && is_op(".")) {
        next();
        auto ref = make(ExprKind::GetAttr, line);
        ref->a = std::move(e);
        ref->name = expect_name().text;
        ref->soft = true;  // marks a namespace reference for to_target
        return ref;
      }
      return e;
    }
    if (t.type == Tok::String) {
      std::string buf;
      while (cur().type == Tok::String) buf += next().text;
      auto e = make(ExprKind::Const, line);
      e->constant = Value::string(std::move(buf));
      return e;
    }
    if (t.type == Tok::Integer || t.type == Tok::Float) {
      Token n = next();
      auto e = make(ExprKind::Const, line);
      e->constant = n.type == Tok::Integer ? Value::integer(n.ival) : Value::real(n.fval);
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(false, true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    fail("unexpected '" + describe(t) + "'");
  }

  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
    for (const auto& name : extra_end) {
      if (is_name(name)) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parens, bool with_ns = false) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_ns) : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
      line = cur().line;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail("Expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = make(ExprKind::Tuple, line);
    e->items = std::move(args);
    return e;
  }

  ExprPtr parse_list() {
    int line = expect_op("[").line;
    auto e = make(ExprKind::List, line);
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    int line = expect_op("{").line;
    auto e = make(ExprKind::Dict, line);
    while (!is_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Token t = next();
    if (t.text == ".") {
      Token attr = next();
      if (attr.type == Tok::Name) {
        auto e = make(ExprKind::GetAttr, t.line);
        e->a = std::move(node);
        e->name = attr.text;
        return e;
      }
      if (attr.type != Tok::Integer) fail("expected name or number", attr.line);
      auto e = make(ExprKind::GetItem, t.line);
      e->a = std::move(node);
      e->b = make(ExprKind::Const, attr.line);
      e->b->constant = Value::integer(attr.ival);
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() == 1 && args[0]->kind == ExprKind::Slice) {
      args[0]->a = std::move(node);
      return std::move(args[0]);
    }
    auto e = make(ExprKind::GetItem, t.line);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      e->b = make(ExprKind::Tuple, t.line);
      for (auto& arg : args) {
        if (arg->kind == ExprKind::Slice) fail("slices inside a tuple subscript are not supported", t.line);
        e->b->items.push_back(std::move(arg));
      }
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    ExprPtr start;
    if (!skip_op(":")) {
      ExprPtr node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      start = std::move(node);
    }
    auto e = make(ExprKind::Slice, line);
    e->b = std::move(start);
    if (!is_op(":") && !is_op("]") && !is_op(",")) e->c = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) e->d = parse_expression(true);
    }
    return e;
  }

  CallArgs parse_call_args() {
    int line = expect_op("(").line;
    CallArgs call;
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", line);
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (skip_op("*")) {
        ensure(!call.dyn_args && !call.dyn_kwargs);
        call.dyn_args = parse_expression(true);
      } else if (skip_op("**")) {
        ensure(!call.dyn_kwargs);
        call.dyn_kwargs = parse_expression(true);
      } else if (cur().type == Tok::Name && look().type == Tok::Op && look().text == "=") {
        ensure(!call.dyn_kwargs);
        std::string key = next().text;
        next();
        call.kwargs.push_back(Keyword{key, parse_expression(true)});
      } else {
        ensure(!call.dyn_args && !call.dyn_kwargs && call.kwargs.empty());
        call.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
    return call;
  }

  ExprPtr parse_call(ExprPtr node) {
    int line = cur().line;
    auto e = make(ExprKind::Call, line);
    e->call = parse_call_args();
    e->a = std::move(node);
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name().text;
    while (skip_op(".")) name += "." + expect_name().text;
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      int line = cur().line;
      std::string name = dotted_name();
      if (!soft_ && !is_known_filter(name)) fail("No filter named '" + name + "'.", line);
      auto e = make(ExprKind::Filter, line);
      e->name = name;
      e->soft = soft_;
      if (is_op("(")) e->call = parse_call_args();
      e->a = std::move(node);
      node = std::move(e);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    int line = next().line;
    bool negated = skip_name("not");
    int name_line = cur().line;
    std::string name = dotted_name();
    if (!soft_ && !is_known_test(name)) fail("No test named '" + name + "'.", name_line);
    auto e = make(ExprKind::Test, line);
    e->name = name;
    e->soft = soft_;
    const Token& t = cur();
    bool arg_start = t.type == Tok::Name || t.type == Tok::String || t.type == Tok::Integer || t.type == Tok::Float ||
                     is_op("(") || is_op("[") || is_op("{");
    if (is_op("(")) {
      e->call = parse_call_args();
    } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->call.args.push_back(parse_postfix(parse_primary(false)));
    }
    e->a = std::move(node);
    if (!negated) return e;
    auto n = make(ExprKind::Not, line);
    n->a = std::move(e);
    return n;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::vector<OpenBlock> blocks_;
  bool soft_ = false;         // inside an if or conditional expression (jinja2's soft frame)
  int loop_depth_ = 0;        // enclosing for loops in this macro (break/continue need one)
  bool loop_target_ = false;  // parsing a for loop's target
  int depth_ = 0;             // recursion depth of the descent
};

}  // namespace

Body parse(std::string_view source) { return Parser(tokenize(source)).parse_template(); }

}  // namespace troupe::tokenizers::jinja::detail
