// jinja2's tests (jinja2/tests.py): `value is name(args)`.
#include <set>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_parser.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

const std::set<std::string> kTests = {
    "odd",     "even",   "divisibleby", "defined",  "undefined", "filter", "test",    "none",
    "boolean", "false",  "true",        "integer",  "float",     "lower",  "upper",   "string",
    "mapping", "number", "sequence",    "iterable", "callable",  "sameas", "escaped", "in",
    "==",      "eq",     "equalto",     "!=",       "ne",        ">",      "gt",      "greaterthan",
    "ge",      ">=",     "<",           "lt",       "lessthan",  "<=",     "le"};

}  // namespace

bool is_known_test(const std::string& name) { return kTests.count(name) > 0; }

bool apply_test(Evaluator& ev, const std::string& name, const Value& v, Args& args) {
  (void)ev;
  const std::string& t = name;
  auto one = [&]() -> Value { return *bind(t, args, {"other"}, 1)[0]; };
  auto none = [&] { bind(t, args, {}); };
  if (t == "defined") return none(), !v.is_undefined();
  if (t == "undefined") return none(), v.is_undefined();
  if (t == "none") return none(), v.is_none();
  if (t == "boolean") return none(), v.is_bool();
  if (t == "true" || t == "false") return none(), v.is_bool() && v.as_bool() == (t == "true");
  if (t == "integer") return none(), v.is_int();
  if (t == "float") return none(), v.kind() == Kind::Float;
  if (t == "number") return none(), v.is_number();
  if (t == "string") return none(), v.is_string();
  if (t == "mapping") return none(), v.kind() == Kind::Dict;
  if (t == "iterable") return none(), iterable(v);
  if (t == "sequence") {
    none();
    return v.is_undefined() || v.is_string() || v.kind() == Kind::Dict ||
           (v.is_list() &&
            (v.list_kind() == ListKind::List || v.list_kind() == ListKind::Tuple || v.list_kind() == ListKind::Range));
  }
  if (t == "callable") return none(), v.kind() == Kind::Function || v.is_undefined() || v.kind() == Kind::Loop;
  if (t == "escaped") return none(), v.is_string() && v.markup();
  if (t == "odd" || t == "even") {
    none();
    return equal(binary_op(BinOp::Mod, v, Value::integer(2)), Value::integer(t == "odd" ? 1 : 0));
  }
  if (t == "divisibleby") {
    Value num = *bind(t, args, {"num"}, 1)[0];
    return equal(binary_op(BinOp::Mod, v, num), Value::integer(0));
  }
  if (t == "in") return contains(*bind(t, args, {"seq"}, 1)[0], v);
  if (t == "==" || t == "eq" || t == "equalto") return equal(v, one());
  if (t == "!=" || t == "ne") return !equal(v, one());
  if (t == ">" || t == "gt" || t == "greaterthan") return less(one(), v);
  if (t == ">=" || t == "ge") {
    Value o = one();
    return less(o, v) || equal(v, o);
  }
  if (t == "<" || t == "lt" || t == "lessthan") return less(v, one());
  if (t == "<=" || t == "le") {
    Value o = one();
    return less(v, o) || equal(v, o);
  }
  if (t == "filter" || t == "test") {
    none();
    return v.is_string() && (t == "filter" ? is_known_filter(v.str()) : is_known_test(v.str()));
  }
  if (t == "sameas") {
    Value o = one();
    if (v.kind() != o.kind()) return false;
    if (v.is_none() || v.is_bool()) return equal(v, o);
    if (v.is_int() && v.as_int() >= -5 && v.as_int() <= 256) return v.as_int() == o.as_int();
    if (v.identity() != nullptr) return v.identity() == o.identity();
    throw TemplateError("the 'sameas' test on " + type_name(v) +
                        " values depends on CPython object identity "
                        "(not supported)");
  }
  throw TemplateError("test '" + t + "' is not supported by Troupe's Jinja");
}

}  // namespace troupe::tokenizers::jinja::detail
