// Statement and expression evaluation for Troupe's Jinja engine; see jinja_eval.h.
#include "tokenizers/jinja_eval.h"

#include <algorithm>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_parser.h"
#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja {

// ---- the loop object ----

std::optional<Value> LoopState::pull() {
  while (next_raw < items.size()) {
    const Value& v = items[next_raw++];
    if (!filter || filter(v)) return v;
  }
  return std::nullopt;
}

std::optional<Value> LoopState::next() {
  std::optional<Value> rv;
  if (!ahead.empty()) {
    rv = std::move(ahead.front());
    ahead.pop_front();
  } else {
    rv = pull();
  }
  if (!rv) return std::nullopt;
  ++index0;
  before = current;
  current = *rv;
  return rv;
}

const Value* LoopState::peek() {
  if (ahead.empty()) {
    if (auto v = pull()) ahead.push_back(std::move(*v));
  }
  return ahead.empty() ? nullptr : &ahead.front();
}

int64_t LoopState::length() {
  if (!filter) return static_cast<int64_t>(items.size());
  while (auto v = pull()) ahead.push_back(std::move(*v));
  return index0 + 1 + static_cast<int64_t>(ahead.size());
}

std::string loop_repr(LoopState& loop) {
  return "<LoopContext " + std::to_string(loop.index0 + 1) + "/" + std::to_string(loop.length()) + ">";
}

int64_t loop_length(LoopState& loop) { return loop.length(); }

namespace detail {

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

namespace {

std::shared_ptr<Scope> child(const std::shared_ptr<Scope>& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

bool starts_with_underscore(const std::string& s) { return !s.empty() && s[0] == '_'; }

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.", true);
}

}  // namespace

std::string Evaluator::render(const Body& body, std::shared_ptr<Scope> globals) {
  out_.clear();
  auto root = child(globals);
  exec_body(body, root);
  return std::move(out_);
}

Evaluator::Flow Evaluator::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

std::string Evaluator::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string saved = std::move(out_);
  out_.clear();
  exec_body(body, scope);
  std::string captured = std::move(out_);
  out_ = std::move(saved);
  return captured;
}

void Evaluator::exec_output(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  for (const auto& part : s.parts) {
    if (!part.expr) {
      out_ += part.text;
    } else {
      Value v = eval(*part.expr, scope, true);
      if (v.is_string()) {
        out_ += v.str();
      } else {
        out_ += to_str(v);
      }
    }
  }
}

Evaluator::Flow Evaluator::exec(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  line_ = s.line;
  switch (s.kind) {
    case StmtKind::Output: exec_output(s, scope); return Flow::Normal;
    case StmtKind::If:
      for (const auto& [test, body] : s.branches) {
        if (truthy(eval(*test, scope))) return exec_body(body, scope);
      }
      return exec_body(s.else_body, scope);
    case StmtKind::For: return exec_for(s, scope);
    case StmtKind::Set: assign(s.target, eval(*s.expr, scope), *scope, scope); return Flow::Normal;
    case StmtKind::SetBlock: {
      Value body = Value::string(capture(s.body, scope));
      assign(s.target, s.expr ? eval_filter(*s.expr, scope, &body) : body, *scope, scope);
      return Flow::Normal;
    }
    case StmtKind::Macro: scope->vars[s.name] = make_macro(s.name, s.signature, s.body, scope); return Flow::Normal;
    case StmtKind::CallBlock: {
      const Expr& call = *s.expr;
      Value callee = eval(*call.a, scope);
      Args args = eval_args(call.call, scope);
      args.kw.emplace_back("caller", make_macro("caller", s.signature, s.body, scope));
      line_ = s.line;
      out_ += to_str(this->call(callee, args));
      return Flow::Normal;
    }
    case StmtKind::FilterBlock: {
      Value body = Value::string(capture(s.body, scope));
      out_ += to_str(eval_filter(*s.expr, scope, &body));
      return Flow::Normal;
    }
    case StmtKind::With: {
      auto inner = child(scope);
      std::vector<Value> values;
      for (const auto& v : s.values) values.push_back(eval(*v, scope));
      for (size_t i = 0; i < s.targets.size(); ++i) assign(s.targets[i], values[i], *inner, inner);
      return exec_body(s.body, inner);
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
    case StmtKind::Generation: return exec_body(s.body, scope);
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  auto loop = std::make_shared<LoopState>();
  loop->items = iterate(eval(*s.expr, scope));
  if (s.filter) {
    loop->filter = [this, &s, scope](const Value& item) {
      auto test_scope = child(scope);
      assign(s.target, item, *test_scope, test_scope);
      return truthy(eval(*s.filter, test_scope));
    };
  }
  bool completed_any = false;  // jinja2 runs the else block unless an iteration reached the end of the body
  while (auto item = loop->next()) {
    auto iteration = child(scope);
    assign(s.target, *item, *iteration, iteration);
    iteration->vars["loop"] = Value::loop(loop);
    Flow f = exec_body(s.body, iteration);
    if (f == Flow::Break) break;
    if (f == Flow::Normal) completed_any = true;
  }
  if (!completed_any && !s.else_body.empty()) exec_body(s.else_body, child(scope));
  return Flow::Normal;
}

void Evaluator::assign(const Target& t, const Value& v, Scope& scope, const std::shared_ptr<Scope>& lookup) {
  switch (t.kind) {
    case Target::Kind::Name: scope.vars[t.name] = v; return;
    case Target::Kind::Tuple: {
      if (v.is_undefined()) fail_undefined(v);
      std::vector<Value> items = iterate(v);
      if (items.size() != t.items.size()) {
        throw TemplateError(items.size() < t.items.size()
                                ? "not enough values to unpack (expected " + std::to_string(t.items.size()) + ", got " +
                                      std::to_string(items.size()) + ")"
                                : "too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
      }
      for (size_t i = 0; i < items.size(); ++i) assign(t.items[i], items[i], scope, lookup);
      return;
    }
    case Target::Kind::NsAttr: {
      const Value* ns = lookup->find(t.name);
      if (ns == nullptr || ns->kind() != Kind::Namespace) {
        throw TemplateError("cannot assign attribute on non-namespace object");
      }
      if (starts_with_underscore(t.attr)) {
        throw TemplateError(
            "SecurityError: Chat templates cannot store underscore-prefixed attributes on a "
            "namespace, but got '" +
            t.attr + "'. Please rename the attribute.");
      }
      ns->ns().set(Value::string(t.attr), v);
      return;
    }
  }
}

Evaluator::~Evaluator() {
  for (const auto& scope : macro_scopes_) scope->vars.clear();
}

Value Evaluator::make_macro(const std::string& name, const Signature& sig, const Body& body,
                            std::shared_ptr<Scope> scope) {
  macro_scopes_.push_back(scope);
  return Value::function(
      "macro '" + name + "'",
      [this, name, &sig, &body, scope](Args& args) { return invoke_macro(name, sig, body, scope, args); },
      "<Macro '" + name + "'>");
}

Value Evaluator::invoke_macro(const std::string& name, const Signature& sig, const Body& body,
                              const std::shared_ptr<Scope>& closure, Args& args) {
  // Python's recursion limit stops a runaway macro; rendered from a shallow stack, jinja2 manages 199 nested macro
  // calls (f(198) of a countdown macro) and fails at the 200th. So does this.
  constexpr int kMaxMacroDepth = 199;
  if (macro_depth_ >= kMaxMacroDepth) throw TemplateError("RecursionError: maximum recursion depth exceeded");
  struct DepthGuard {
    int& depth;
    explicit DepthGuard(int& d) : depth(++d) {}
    ~DepthGuard() { --depth; }
  } guard(macro_depth_);
  auto frame = child(closure);
  std::vector<std::pair<std::string, Value>> kwargs = args.kw;
  auto pop_kw = [&](const std::string& key) -> std::optional<Value> {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      if (it->first == key) {
        Value v = std::move(it->second);
        kwargs.erase(it);
        return v;
      }
    }
    return std::nullopt;
  };
  size_t n = sig.params.size();
  std::vector<std::optional<Value>> values;
  for (size_t i = 0; i < n && i < args.pos.size(); ++i) values.emplace_back(args.pos[i]);
  bool found_caller = false;
  if (values.size() != n) {
    for (size_t i = values.size(); i < n; ++i) {
      values.push_back(pop_kw(sig.params[i]));
      if (sig.params[i] == "caller") found_caller = true;
    }
  } else {
    found_caller = std::find(sig.params.begin(), sig.params.end(), "caller") != sig.params.end();
  }
  if (sig.caller && !found_caller) {
    std::optional<Value> caller = pop_kw("caller");
    frame->vars["caller"] = caller ? *caller : Value::undefined("No caller defined");
  }
  if (sig.catch_kwargs) {
    DictData d;
    for (auto& [k, v] : kwargs) d.items.emplace_back(Value::string(k), v);
    frame->vars["kwargs"] = Value::dict(std::move(d));
  } else if (!kwargs.empty()) {
    throw TemplateError(kwargs[0].first == "caller"
                            ? "macro '" + name + "' was invoked with two values for the special caller argument."
                            : "macro '" + name + "' takes no keyword argument '" + kwargs[0].first + "'");
  }
  if (sig.catch_varargs) {
    std::vector<Value> rest;
    for (size_t i = n; i < args.pos.size(); ++i) rest.push_back(args.pos[i]);
    frame->vars["varargs"] = Value::list(std::move(rest), ListKind::Tuple);
  } else if (args.pos.size() > n) {
    throw TemplateError("macro '" + name + "' takes not more than " + std::to_string(n) + " argument(s)");
  }
  size_t first_default = n - sig.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (values[i]) {
      frame->vars[sig.params[i]] = *values[i];
    } else if (i >= first_default) {
      frame->vars[sig.params[i]] = eval(*sig.defaults[i - first_default], frame);
    } else {
      frame->vars[sig.params[i]] = Value::undefined("parameter '" + sig.params[i] + "' was not provided");
    }
  }
  return Value::string(capture(body, frame));
}

Value Evaluator::eval_name(const Expr& e, const std::shared_ptr<Scope>& scope) {
  const Value* v = scope->find(e.name);
  return v != nullptr ? *v : Value::undefined("'" + e.name + "' is undefined");
}

Args Evaluator::eval_args(const CallArgs& call, const std::shared_ptr<Scope>& scope) {
  Args args;
  for (const auto& a : call.args) args.pos.push_back(eval(*a, scope));
  for (const auto& kw : call.kwargs) args.kw.emplace_back(kw.name, eval(*kw.value, scope));
  if (call.dyn_args) {
    Value extra = eval(*call.dyn_args, scope);
    for (Value& v : iterate(extra)) args.pos.push_back(std::move(v));
  }
  if (call.dyn_kwargs) {
    Value extra = eval(*call.dyn_kwargs, scope);
    if (extra.kind() != Kind::Dict) throw TemplateError("argument after ** must be a mapping");
    for (const auto& [k, v] : extra.dict().items) {
      if (!k.is_string()) throw TemplateError("keywords must be strings");
      args.kw.emplace_back(k.str(), v);
    }
  }
  return args;
}

Value Evaluator::eval_filter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_input) {
  Value input = e.a ? eval(*e.a, scope) : block_input != nullptr ? *block_input : Value();
  Args args = eval_args(e.call, scope);
  line_ = e.line;
  return call_filter(e.name, input, args);
}

Value Evaluator::eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.items[0], scope);
  for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
    Value right = eval(*e.items[i + 1], scope);
    line_ = e.line;
    bool ok = false;
    switch (e.cmp_ops[i]) {
      case CmpOp::Eq: ok = equal(left, right); break;
      case CmpOp::Ne: ok = !equal(left, right); break;
      case CmpOp::Lt: ok = less(left, right); break;
      case CmpOp::Le: ok = less(left, right) || equal(left, right); break;
      case CmpOp::Gt: ok = less(right, left); break;
      case CmpOp::Ge: ok = less(right, left) || equal(left, right); break;
      case CmpOp::In: ok = contains(right, left); break;
      case CmpOp::NotIn: ok = !contains(right, left); break;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

namespace {

// jinja2's has_safe_repr: the values its compiler can write into generated code as constants.
bool safe_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::None:
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float:
    case Kind::String: return true;
    case Kind::List:
      if (v.list_kind() != ListKind::List && v.list_kind() != ListKind::Tuple && v.list_kind() != ListKind::Range) {
        return false;
      }
      return std::all_of(v.items().begin(), v.items().end(), safe_repr);
    case Kind::Dict:
      return std::all_of(v.dict().items.begin(), v.dict().items.end(),
                         [](const auto& kv) { return safe_repr(kv.first) && safe_repr(kv.second); });
    default: return false;
  }
}

}  // namespace

Value Evaluator::eval(const Expr& e, const std::shared_ptr<Scope>& scope, bool printed) {
  if (folding_ && !e.foldable) throw TemplateError("not a constant");  // jinja2's Impossible
  if (e.foldable && !folding_) {
    std::optional<Value> folded;
    folding_ = true;
    try {
      folded = eval_node(e, scope);
    } catch (const TemplateError&) {
      // jinja2 could not fold it (Impossible): it runs at render time
    }
    folding_ = false;
    if (folded && (printed || safe_repr(*folded))) return *folded;
  }
  return eval_node(e, scope);
}

Value Evaluator::eval_node(const Expr& e, const std::shared_ptr<Scope>& scope) {
  line_ = e.line;
  switch (e.kind) {
    case ExprKind::Const: return e.constant;
    case ExprKind::Name: return eval_name(e, scope);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      for (const auto& item : e.items) items.push_back(eval(*item, scope));
      return Value::list(std::move(items), e.kind == ExprKind::List ? ListKind::List : ListKind::Tuple);
    }
    case ExprKind::Dict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i], scope);
        if (!hashable(key)) throw TemplateError("unhashable type: '" + type_name(key) + "'");
        d.set(key, eval(*e.items[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::GetAttr: {
      Value obj = eval(*e.a, scope);
      line_ = e.line;
      return getattr(obj, e.name);
    }
    case ExprKind::GetItem: {
      Value obj = eval(*e.a, scope);
      Value key = eval(*e.b, scope);
      line_ = e.line;
      return getitem(obj, key);
    }
    case ExprKind::Slice: {
      Value obj = eval(*e.a, scope);
      Value start = e.b ? eval(*e.b, scope) : Value();
      Value stop = e.c ? eval(*e.c, scope) : Value();
      Value step = e.d ? eval(*e.d, scope) : Value();
      line_ = e.line;
      return slice(obj, start, stop, step, folding_);
    }
    case ExprKind::Call: {
      Value callee = eval(*e.a, scope);
      Args args = eval_args(e.call, scope);
      line_ = e.line;
      return call(callee, args);
    }
    case ExprKind::Filter: return eval_filter(e, scope, nullptr);
    case ExprKind::Test: {
      Value input = eval(*e.a, scope);
      Args args = eval_args(e.call, scope);
      line_ = e.line;
      return Value::boolean(call_test(e.name, input, args));
    }
    case ExprKind::Neg: return negate(eval(*e.a, scope));
    case ExprKind::Pos: return unary_plus(eval(*e.a, scope));
    case ExprKind::Not: return Value::boolean(!truthy(eval(*e.a, scope)));
    case ExprKind::Binary: {
      Value a = eval(*e.a, scope);
      Value b = eval(*e.b, scope);
      line_ = e.line;
      return binary_op(e.op, a, b);
    }
    case ExprKind::Concat: {
      std::string s;
      for (const auto& item : e.items) s += to_str(eval(*item, scope));
      return Value::string(std::move(s));
    }
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::And: {
      Value a = eval(*e.a, scope);
      return truthy(a) ? eval(*e.b, scope) : a;
    }
    case ExprKind::Or: {
      Value a = eval(*e.a, scope);
      return truthy(a) ? a : eval(*e.b, scope);
    }
    case ExprKind::CondExpr:
      if (truthy(eval(*e.a, scope))) return eval(*e.b, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
  }
  return Value();
}

Value Evaluator::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  bool dunder = name.size() > 4 && name.rfind("__", 0) == 0 && name.compare(name.size() - 2, 2, "__") == 0;
  if (dunder) return unsafe(obj, name);
  if (std::optional<Value> attr = python_attribute(*this, obj, name)) {
    if (starts_with_underscore(name) || is_mutating_method(obj, name)) return unsafe(obj, name);
    return *attr;
  }
  if (obj.kind() == Kind::Dict) {
    if (const Value* v = obj.dict().find(Value::string(name))) return *v;
  }
  return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
}

Value Evaluator::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  switch (obj.kind()) {
    case Kind::Dict:
      if (hashable(key)) {
        if (const Value* v = obj.dict().find(key)) return *v;
      }
      break;
    case Kind::List:
      if ((key.is_int() || key.is_bool()) && obj.list_kind() != ListKind::DictKeys &&
          obj.list_kind() != ListKind::DictValues && obj.list_kind() != ListKind::DictItems) {
        if (auto i = sequence_index(key.as_int(), obj.items().size())) return obj.items()[*i];
      }
      break;
    case Kind::String:
      if (key.is_int() || key.is_bool()) {
        std::u32string s = decode(obj.str());
        if (auto i = sequence_index(key.as_int(), s.size())) {
          return Value::string(encode(s.substr(*i, 1)), obj.markup());  // Markup.__getitem__ keeps Markup
        }
      }
      break;
    default: break;
  }
  if (key.is_string()) {
    const std::string& name = key.str();
    bool dunder = name.size() > 4 && name.rfind("__", 0) == 0 && name.compare(name.size() - 2, 2, "__") == 0;
    if (dunder) return unsafe(obj, name);
    if (std::optional<Value> attr = python_attribute(*this, obj, name)) {
      if (starts_with_underscore(name) || is_mutating_method(obj, name)) return unsafe(obj, name);
      return *attr;
    }
    return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'");
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
}

Value Evaluator::call(const Value& callee, Args& args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (callee.kind() != Kind::Function) throw TemplateError("'" + type_name(callee) + "' object is not callable");
  return callee.fn().call(args);
}

Value Evaluator::call_filter(const std::string& name, const Value& input, Args& args) {
  if (!is_known_filter(name)) throw TemplateError("No filter named '" + name + "'.");
  return apply_filter(*this, name, input, args);
}

bool Evaluator::call_test(const std::string& name, const Value& input, Args& args) {
  if (!is_known_test(name)) throw TemplateError("No test named '" + name + "'.");
  return apply_test(*this, name, input, args);
}

}  // namespace detail
}  // namespace troupe::tokenizers::jinja
