// Python's arithmetic, slicing and `in` on Jinja values (CPython's int/float rules: floor division and modulo round
// toward negative infinity, int ** negative int is a float, 64-bit overflow is an error), and argument binding.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

constexpr size_t kMaxRepeat = size_t{1} << 26;  // refuse to build strings/lists above ~64M items

bool int_like(const Value& v) { return v.kind() == Kind::Int || v.kind() == Kind::Bool; }

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  throw TemplateError(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" +
                      type_name(b) + "'");
}

[[noreturn]] void zero_division(const char* what) { throw TemplateError(std::string("ZeroDivisionError: ") + what); }

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) zero_division("integer division or modulo by zero");
  if (b == -1) return sub_int(0, a);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == 0) zero_division("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

// CPython's float_floor_div and float_rem.
double float_mod(double vx, double wx) {
  if (wx == 0.0) zero_division("float modulo");
  double mod = std::fmod(vx, wx);
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) mod += wx;
  } else {
    mod = std::copysign(0.0, wx);
  }
  return mod;
}

double float_floor_div(double vx, double wx) {
  if (wx == 0.0) zero_division("float floor division by zero");
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0 && ((wx < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, vx / wx);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) zero_division("0.0 cannot be raised to a negative power");
    return Value::real(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  }
  int64_t result = 1;
  int64_t b = base;
  while (exp > 0) {
    if (exp & 1) result = mul_int(result, b);
    exp >>= 1;
    if (exp > 0) b = mul_int(b, b);
  }
  return Value::integer(result);
}

Value float_pow(double a, double b) {
  if (a == 0.0 && b < 0.0) zero_division("0.0 cannot be raised to a negative power");
  if (a < 0.0 && b != std::floor(b) && std::isfinite(b)) {
    throw TemplateError("a negative number to a fractional power is complex in Python (not supported)");
  }
  double r = std::pow(a, b);
  if (std::isinf(r) && std::isfinite(a) && std::isfinite(b))
    throw TemplateError(
        "OverflowError: (34, 'Numerical "
        "result out of range')");
  return Value::real(r);
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.list_kind());
  if (seq.is_string()) {
    if (seq.str().size() * static_cast<size_t>(n) > kMaxRepeat) throw TemplateError("string repetition too large");
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  if (seq.items().size() * static_cast<size_t>(n) > kMaxRepeat) throw TemplateError("list repetition too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.list_kind());
}

bool plain_sequence(const Value& v) {
  return v.is_list() && (v.list_kind() == ListKind::List || v.list_kind() == ListKind::Tuple);
}

// PySlice_AdjustIndices: clamps a bound to the sequence.
int64_t adjust(const Value& bound, int64_t len, int64_t step, bool is_start) {
  int64_t lower = step < 0 ? -1 : 0;
  int64_t upper = step < 0 ? len - 1 : len;
  if (bound.is_undefined() || bound.is_none()) return (is_start == (step < 0)) ? upper : lower;
  if (!int_like(bound)) {
    throw TemplateError("slice indices must be integers or None or have an __index__ method");
  }
  int64_t v = bound.as_int();
  if (v < 0) {
    v += len;
    if (v < lower) v = lower;
  } else if (v > upper) {
    v = upper;
  }
  return v;
}

// Whether Python's % formatting takes `v` as a mapping (it has __getitem__ and is neither a tuple nor a str).
bool format_mapping(const Value& v) {
  return v.is_undefined() || v.kind() == Kind::Dict ||
         (v.is_list() && plain_sequence(v) && v.list_kind() == ListKind::List) ||
         (v.is_list() && v.list_kind() == ListKind::Range);
}

}  // namespace

std::string printf_format(const std::string& fmt, const Value& args) {
  bool tuple = args.is_list() && args.list_kind() == ListKind::Tuple;
  std::vector<Value> positional = tuple ? args.items() : std::vector<Value>{args};
  const Value* mapping = format_mapping(args) ? &args : nullptr;
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) throw TemplateError("ValueError: incomplete format");
    std::optional<Value> keyed;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw TemplateError("ValueError: incomplete format key");
      if (mapping == nullptr || mapping->kind() != Kind::Dict) {
        if (mapping != nullptr && mapping->is_undefined()) fail_undefined(*mapping);
        throw TemplateError("TypeError: format requires a mapping");
      }
      const Value* v = mapping->dict().find(Value::string(fmt.substr(i + 1, close - i - 1)));
      if (v == nullptr) throw TemplateError("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      keyed = *v;
      i = close + 1;
    }
    bool left = false;
    while (i < fmt.size() && fmt[i] == '-') {
      left = true;
      ++i;
    }
    size_t width = 0;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') width = width * 10 + (fmt[i++] - '0');
    if (i >= fmt.size()) throw TemplateError("ValueError: incomplete format");
    char conv = fmt[i];
    if (conv == '%' && !keyed) {
      out.push_back('%');
      continue;
    }
    if (conv != 's' && conv != 'r' && conv != 'd' && conv != 'i' && conv != 'u') {
      throw TemplateError(std::string("printf-style '%") + conv + "' formatting is not supported by Troupe's Jinja");
    }
    Value v;
    if (keyed) {
      v = *keyed;
    } else {
      if (next >= positional.size()) throw TemplateError("TypeError: not enough arguments for format string");
      v = positional[next++];
    }
    std::string piece;
    if (conv == 's') {
      piece = to_str(v);
    } else if (conv == 'r') {
      piece = to_repr(v);
    } else {
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) throw TemplateError("TypeError: %d format: a real number is required, not " + type_name(v));
      double f = v.as_float();
      if (v.kind() == Kind::Float && (!std::isfinite(f) || std::fabs(f) >= 9.2e18)) {
        throw TemplateError("%d of a float outside 64 bits is not supported (Troupe's Jinja integers are 64-bit)");
      }
      piece = std::to_string(v.kind() == Kind::Float ? static_cast<int64_t>(f) : v.as_int());
    }
    size_t len = detail::length(piece);
    if (width > len) piece = left ? piece + std::string(width - len, ' ') : std::string(width - len, ' ') + piece;
    out += piece;
  }
  if (next < positional.size() && mapping == nullptr && !(tuple && positional.empty())) {
    throw TemplateError("TypeError: not all arguments converted during string formatting");
  }
  return out;
}

Value binary_op(BinOp op, const Value& a, const Value& b) {
  if (op == BinOp::Mod && a.is_string()) {  // str.__mod__ takes anything, an undefined too (as a mapping)
    if (a.markup()) throw TemplateError("'%' on a |safe (Markup) string is not supported");
    return Value::string(printf_format(a.str(), b));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  bool ints = int_like(a) && int_like(b);
  bool nums = a.is_number() && b.is_number();
  switch (op) {
    case BinOp::Add:
      if (ints) return Value::integer(add_int(a.as_int(), b.as_int()));
      if (nums) return Value::real(a.as_float() + b.as_float());
      if (a.is_string() && b.is_string()) {
        if (a.markup() || b.markup()) throw TemplateError("'+' on a |safe (Markup) string is not supported");
        return Value::string(a.str() + b.str());
      }
      if (plain_sequence(a) && plain_sequence(b) && a.list_kind() == b.list_kind()) {
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items), a.list_kind());
      }
      unsupported("+", a, b);
    case BinOp::Sub:
      if (ints) return Value::integer(sub_int(a.as_int(), b.as_int()));
      if (nums) return Value::real(a.as_float() - b.as_float());
      unsupported("-", a, b);
    case BinOp::Mul:
      if (ints) return Value::integer(mul_int(a.as_int(), b.as_int()));
      if (nums) return Value::real(a.as_float() * b.as_float());
      if ((a.is_string() || plain_sequence(a)) && int_like(b)) return repeat(a, b.as_int());
      if (int_like(a) && (b.is_string() || plain_sequence(b))) return repeat(b, a.as_int());
      unsupported("*", a, b);
    case BinOp::Div:
      if (nums) {
        if (b.as_float() == 0.0) zero_division("division by zero");
        if (ints) return Value::real(static_cast<double>(static_cast<long double>(a.as_int()) / b.as_int()));
        return Value::real(a.as_float() / b.as_float());
      }
      unsupported("/", a, b);
    case BinOp::FloorDiv:
      if (ints) return Value::integer(floor_div(a.as_int(), b.as_int()));
      if (nums) return Value::real(float_floor_div(a.as_float(), b.as_float()));
      unsupported("//", a, b);
    case BinOp::Mod:
      if (ints) return Value::integer(int_mod(a.as_int(), b.as_int()));
      if (nums) return Value::real(float_mod(a.as_float(), b.as_float()));
      unsupported("%", a, b);
    case BinOp::Pow:
      if (ints) return int_pow(a.as_int(), b.as_int());
      if (nums) return float_pow(a.as_float(), b.as_float());
      unsupported("** or pow()", a, b);
  }
  unsupported("?", a, b);
}

Value negate(const Value& a) {
  if (a.is_undefined()) fail_undefined(a);
  if (int_like(a)) return Value::integer(sub_int(0, a.as_int()));
  if (a.kind() == Kind::Float) return Value::real(-a.as_float());
  throw TemplateError("bad operand type for unary -: '" + type_name(a) + "'");
}

Value unary_plus(const Value& a) {
  if (a.is_undefined()) fail_undefined(a);
  if (int_like(a)) return Value::integer(a.as_int());
  if (a.kind() == Kind::Float) return a;
  throw TemplateError("bad operand type for unary +: '" + type_name(a) + "'");
}

std::optional<size_t> sequence_index(int64_t index, size_t size) {
  int64_t n = static_cast<int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return static_cast<size_t>(index);
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, bool via_getitem) {
  if (obj.is_undefined()) fail_undefined(obj);
  bool sliceable = obj.is_string() || (obj.is_list() && (plain_sequence(obj) || obj.list_kind() == ListKind::Range));
  auto bad_bound = [](const Value& b) { return !b.is_undefined() && !b.is_none() && !int_like(b); };
  if (via_getitem && (!sliceable || bad_bound(start) || bad_bound(stop) || bad_bound(step))) {
    return Value::undefined(object_type_repr(obj) + " has no element slice");
  }
  if (!sliceable) {
    if (obj.kind() == Kind::Dict) throw TemplateError("unhashable type: 'slice'");
    throw TemplateError("'" + type_name(obj) + "' object is not subscriptable");
  }
  int64_t st = 1;
  if (!step.is_undefined() && !step.is_none()) {
    if (!int_like(step)) throw TemplateError("slice indices must be integers or None or have an __index__ method");
    st = step.as_int();
    if (st == 0) throw TemplateError("slice step cannot be zero");
  }
  std::u32string chars = obj.is_string() ? decode(obj.str()) : std::u32string();
  int64_t len = obj.is_string() ? static_cast<int64_t>(chars.size()) : static_cast<int64_t>(obj.items().size());
  int64_t lo = adjust(start, len, st, true);
  int64_t hi = adjust(stop, len, st, false);
  std::vector<int64_t> idx;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) idx.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : idx) out.push_back(chars[i]);
    return Value::string(encode(out), obj.markup());
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(obj.items()[i]);
  if (obj.list_kind() != ListKind::Range) return Value::list(std::move(out), obj.list_kind());
  // CPython's range slice: start + lo * step, start + hi * step, step * slice step.
  const auto& r = obj.list_v();
  return Value::range(r.range_start + lo * r.range_step, r.range_start + hi * r.range_step, r.range_step * st);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::Undefined:
      length(container);  // raises under StrictUndefined; the default Undefined contains nothing
      return false;
    case Kind::String:
      if (!item.is_string()) {
        if (item.is_undefined()) fail_undefined(item);
        throw TemplateError("'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      for (const Value& x : container.items()) {
        if (equal(x, item)) return true;
      }
      return false;
    case Kind::Dict:
      if (!hashable(item)) throw TemplateError("unhashable type: '" + type_name(item) + "'");
      return container.dict().find(item) != nullptr;
    case Kind::Iterator:
      while (auto x = container.iter().next()) {
        if (equal(*x, item)) return true;
      }
      return false;
    default: throw TemplateError("argument of type '" + type_name(container) + "' is not iterable");
  }
}

std::vector<std::optional<Value>> bind(const std::string& what, const Args& args, const std::vector<std::string>& names,
                                       size_t required) {
  if (args.pos.size() > names.size()) {
    throw TemplateError(what + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
                        std::to_string(args.pos.size()) + " given)");
  }
  std::vector<std::optional<Value>> out(names.size());
  for (size_t i = 0; i < args.pos.size(); ++i) out[i] = args.pos[i];
  for (const auto& [key, v] : args.kw) {
    auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) throw TemplateError(what + "() got an unexpected keyword argument '" + key + "'");
    size_t i = static_cast<size_t>(it - names.begin());
    if (out[i]) throw TemplateError(what + "() got multiple values for argument '" + key + "'");
    out[i] = v;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!out[i]) throw TemplateError(what + "() missing required argument '" + names[i] + "'");
  }
  return out;
}

int64_t int_arg(const std::string& what, const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (!int_like(v)) throw TemplateError(what + ": '" + type_name(v) + "' object cannot be interpreted as an integer");
  return v.as_int();
}

std::string str_arg(const std::string& what, const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) throw TemplateError(what + ": expected a string, not '" + type_name(v) + "'");
  return v.str();
}

}  // namespace troupe::tokenizers::jinja::detail
