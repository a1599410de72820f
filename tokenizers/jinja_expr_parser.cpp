// jinja2's expression parser (jinja2/parser.py, parse_expression down to parse_primary, and assignment targets),
// function by function; see jinja_expr_parser.h.
#include "tokenizers/jinja_expr_parser.h"

#include "tokenizers/jinja_parser.h"

namespace troupe::tokenizers::jinja::detail {

// ---- assignment targets ----
Target ExprParser::to_target(const Expr& e) {
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

Target ExprParser::parse_assign_target(bool with_tuple, bool name_only, std::vector<std::string> extra_end,
                                       bool with_ns) {
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

ExprPtr ExprParser::parse_expression(bool with_condexpr) {
  Nesting guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr ExprParser::parse_condexpr() {
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

ExprPtr ExprParser::binary(ExprKind kind, ExprPtr a, ExprPtr b, int line) {
  auto e = make(kind, line);
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

ExprPtr ExprParser::parse_or() {
  int line = cur().line;
  ExprPtr left = parse_and();
  while (skip_name("or")) {
    left = binary(ExprKind::Or, std::move(left), parse_and(), line);
    line = cur().line;
  }
  return left;
}

ExprPtr ExprParser::parse_and() {
  int line = cur().line;
  ExprPtr left = parse_not();
  while (skip_name("and")) {
    left = binary(ExprKind::And, std::move(left), parse_not(), line);
    line = cur().line;
  }
  return left;
}

ExprPtr ExprParser::parse_not() {
  if (is_name("not")) {
    int line = next().line;
    auto e = make(ExprKind::Not, line);
    e->a = parse_not();
    return e;
  }
  return parse_compare();
}

ExprPtr ExprParser::parse_compare() {
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

ExprPtr ExprParser::arithmetic(ExprPtr left, BinOp op, ExprPtr right, int line) {
  auto e = binary(ExprKind::Binary, std::move(left), std::move(right), line);
  e->op = op;
  return e;
}

ExprPtr ExprParser::parse_math1() {
  int line = cur().line;
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    BinOp op = next().text == "+" ? BinOp::Add : BinOp::Sub;
    left = arithmetic(std::move(left), op, parse_concat(), line);
    line = cur().line;
  }
  return left;
}

ExprPtr ExprParser::parse_concat() {
  int line = cur().line;
  ExprPtr first = parse_math2();
  if (!is_op("~")) return first;
  auto e = make(ExprKind::Concat, line);
  e->items.push_back(std::move(first));
  while (skip_op("~")) e->items.push_back(parse_math2());
  return e;
}

ExprPtr ExprParser::parse_math2() {
  int line = cur().line;
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    BinOp op = is_op("*") ? BinOp::Mul : is_op("/") ? BinOp::Div : is_op("//") ? BinOp::FloorDiv : BinOp::Mod;
    next();
    left = arithmetic(std::move(left), op, parse_pow(), line);
    line = cur().line;
  }
  return left;
}

ExprPtr ExprParser::parse_pow() {
  int line = cur().line;
  ExprPtr left = parse_unary(true);
  while (skip_op("**")) {
    left = arithmetic(std::move(left), BinOp::Pow, parse_unary(true), line);
    line = cur().line;
  }
  return left;
}

ExprPtr ExprParser::parse_unary(bool with_filter) {
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

ExprPtr ExprParser::parse_primary(bool with_ns) {
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

bool ExprParser::is_tuple_end(const std::vector<std::string>& extra_end) const {
  if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
  for (const auto& name : extra_end) {
    if (is_name(name)) return true;
  }
  return false;
}

ExprPtr ExprParser::parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                                bool explicit_parens, bool with_ns) {
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

ExprPtr ExprParser::parse_list() {
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

ExprPtr ExprParser::parse_dict() {
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

ExprPtr ExprParser::parse_postfix(ExprPtr node) {
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

ExprPtr ExprParser::parse_filter_expr(ExprPtr node) {
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

ExprPtr ExprParser::parse_subscript(ExprPtr node) {
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

ExprPtr ExprParser::parse_subscribed() {
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

CallArgs ExprParser::parse_call_args() {
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

ExprPtr ExprParser::parse_call(ExprPtr node) {
  int line = cur().line;
  auto e = make(ExprKind::Call, line);
  e->call = parse_call_args();
  e->a = std::move(node);
  return e;
}

std::string ExprParser::dotted_name() {
  std::string name = expect_name().text;
  while (skip_op(".")) name += "." + expect_name().text;
  return name;
}

ExprPtr ExprParser::parse_filter(ExprPtr node, bool start_inline) {
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

ExprPtr ExprParser::parse_test(ExprPtr node) {
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

}  // namespace troupe::tokenizers::jinja::detail
