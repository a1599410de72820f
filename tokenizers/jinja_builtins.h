// What Troupe's Jinja engine offers templates beyond the syntax: Python's operators on values, jinja2's filters and
// tests, the str/dict/list methods templates call, the loop object's attributes, and the globals of transformers'
// environment (range, dict, namespace, raise_exception, strftime_now). Each does what the Python original does;
// jinja2 filters and methods that are not implemented fail with an error naming them when they run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tokenizers/jinja_ast.h"
#include "tokenizers/jinja_value.h"

namespace troupe::tokenizers::jinja::detail {

class Evaluator;
struct Scope;

// ---- operators (jinja_ops.cpp) ----
Value binary_op(BinOp op, const Value& a, const Value& b);
Value negate(const Value& a);
Value unary_plus(const Value& a);
// obj[start:stop:step]; absent bounds are undefined values. `via_getitem`: as jinja2's environment.getitem does it
// (when it folds constants), where a TypeError (an object that cannot be sliced, non-int bounds) gives undefined.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, bool via_getitem = false);
// item in container.
bool contains(const Value& container, const Value& item);
// Python's `fmt % args` for the conversions s, r, d, i, u and %% with an optional (key), '-' and a width; other
// conversions are an error naming them.
std::string printf_format(const std::string& fmt, const Value& args);
// Python's int index of a list/str/tuple (bool counts), wrapping negatives; nullopt when out of range.
std::optional<size_t> sequence_index(int64_t index, size_t size);

// ---- argument binding (jinja_ops.cpp) ----
// Binds `args` to `names` as a Python signature would (positional first, then keywords; the first `required` names
// must be given). Throws TemplateError naming `what` on a missing, unknown or repeated argument.
std::vector<std::optional<Value>> bind(const std::string& what, const Args& args, const std::vector<std::string>& names,
                                       size_t required = 0);
int64_t int_arg(const std::string& what, const Value& v);
std::string str_arg(const std::string& what, const Value& v);
// A bound optional argument: given and truthy; given, or the fallback.
inline bool arg_true(const std::optional<Value>& v) { return v && truthy(*v); }
inline Value arg_or(const std::optional<Value>& v, Value fallback) { return v ? *v : std::move(fallback); }

// ---- filters (jinja_filters.cpp, jinja_sequence_filters.cpp) and tests (jinja_tests.cpp) ----
Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, Args& args);
// The filters on sequences and the generator filters; nullopt for any other name.
std::optional<Value> apply_sequence_filter(Evaluator& ev, const std::string& name, const Value& input, Args& args);
bool apply_test(Evaluator& ev, const std::string& name, const Value& input, Args& args);

// ---- attributes, methods and globals (jinja_methods.cpp) ----
// The attribute `name` of `obj` as Python's getattr sees it (a bound method, a loop property, a namespace
// attribute), or nullopt where the type has none. Whether the sandbox allows it is the caller's business.
std::optional<Value> python_attribute(Evaluator& ev, const Value& obj, const std::string& name);
// list and dict methods that modify their object (the immutable sandbox refuses them).
bool is_mutating_method(const Value& obj, const std::string& name);
// Adds transformers' environment globals to `scope`.
void add_globals(Scope& scope);
// Python's str(x) after soft_str (undefined prints as the empty string); the str methods (jinja_methods.cpp).
Value call_str_method(const std::string& method, const std::string& s, Args& args);

}  // namespace troupe::tokenizers::jinja::detail
