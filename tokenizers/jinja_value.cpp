// Python semantics of Jinja values: truthiness, ==, <, str(), repr(), len(), iteration, JSON in and out (json.dumps).
#include "tokenizers/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja {

// Defined with the loop object (jinja_eval.cpp).
std::string loop_repr(LoopState& loop);
int64_t loop_length(LoopState& loop);

namespace {

constexpr int kMaxDepth = 200;  // nesting limit of repr/json (namespaces can contain themselves)

void check_depth(int depth) {
  if (depth > kMaxDepth) throw TemplateError("value nested too deeply (or containing itself) to print");
}

bool numbers_equal(const Value& a, const Value& b) {
  if (a.kind() == Kind::Float || b.kind() == Kind::Float) {
    if (a.kind() == Kind::Float && b.kind() == Kind::Float) return a.as_float() == b.as_float();
    // int vs float compares exactly, as Python does (no rounding of the int).
    double f = a.kind() == Kind::Float ? a.as_float() : b.as_float();
    int64_t i = a.kind() == Kind::Float ? b.as_int() : a.as_int();
    if (!std::isfinite(f) || f != std::floor(f) || f < -9.223372036854775808e18 || f >= 9.223372036854775808e18) {
      return false;
    }
    return static_cast<int64_t>(f) == i;
  }
  return a.as_int() == b.as_int();
}

// Exact for mixed int/float: long double holds every int64 and every double.
long double exact(const Value& v) {
  return v.kind() == Kind::Float ? static_cast<long double>(v.as_float()) : static_cast<long double>(v.as_int());
}

bool numbers_less(const Value& a, const Value& b) {
  if (a.kind() != Kind::Float && b.kind() != Kind::Float) return a.as_int() < b.as_int();
  return exact(a) < exact(b);
}

bool unordered_equal(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  for (const Value& x : a) {
    if (std::none_of(b.begin(), b.end(), [&](const Value& y) { return equal(x, y); })) return false;
  }
  return true;
}

bool sequences_equal(const Value& a, const Value& b) {
  ListKind ka = a.list_kind();
  ListKind kb = b.list_kind();
  if (ka == ListKind::DictValues || kb == ListKind::DictValues) return a.identity() == b.identity();
  bool set_a = ka == ListKind::DictKeys || ka == ListKind::DictItems;
  bool set_b = kb == ListKind::DictKeys || kb == ListKind::DictItems;
  if (set_a || set_b) return set_a && set_b && unordered_equal(a.items(), b.items());
  if (ka != kb) return false;  // a list never equals a tuple or a range
  const auto& x = a.items();
  const auto& y = b.items();
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!equal(x[i], y[i])) return false;
  }
  return true;
}

bool dicts_equal(const DictData& a, const DictData& b) {
  if (a.items.size() != b.items.size()) return false;
  for (const auto& [k, v] : a.items) {
    const Value* other = b.find(k);
    if (other == nullptr || !equal(v, *other)) return false;
  }
  return true;
}

std::string repr_items(const std::vector<Value>& items, int depth);
std::string repr_dict(const DictData& d, int depth);

std::string repr_at(const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::String: return v.markup() ? "Markup(" + detail::repr(v.str()) + ")" : detail::repr(v.str());
    case Kind::List: {
      const auto& lv = v.list_v();
      switch (lv.kind) {
        case ListKind::List: return "[" + repr_items(v.items(), depth) + "]";
        case ListKind::Tuple: return "(" + repr_items(v.items(), depth) + (v.items().size() == 1 ? ",)" : ")");
        case ListKind::Range:
          return "range(" + std::to_string(lv.range_start) + ", " + std::to_string(lv.range_stop) +
                 (lv.range_step == 1 ? "" : ", " + std::to_string(lv.range_step)) + ")";
        case ListKind::DictKeys: return "dict_keys([" + repr_items(v.items(), depth) + "])";
        case ListKind::DictValues: return "dict_values([" + repr_items(v.items(), depth) + "])";
        case ListKind::DictItems: return "dict_items([" + repr_items(v.items(), depth) + "])";
      }
      break;
    }
    case Kind::Dict: return repr_dict(v.dict(), depth);
    case Kind::Namespace: return "<Namespace " + repr_dict(v.ns(), depth) + ">";
    default: break;
  }
  return to_str(v);
}

std::string repr_items(const std::vector<Value>& items, int depth) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += repr_at(items[i], depth + 1);
  }
  return out;
}

std::string repr_dict(const DictData& d, int depth) {
  std::string out = "{";
  for (size_t i = 0; i < d.items.size(); ++i) {
    if (i > 0) out += ", ";
    out += repr_at(d.items[i].first, depth + 1) + ": " + repr_at(d.items[i].second, depth + 1);
  }
  return out + "}";
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  static const char* kHex = "0123456789abcdef";
  auto hex4 = [&](uint32_t u) {
    out += "\\u";
    for (int k = 3; k >= 0; --k) out.push_back(kHex[(u >> (4 * k)) & 15]);
  };
  out.push_back('"');
  for (char32_t c : detail::decode(s)) {
    switch (c) {
      case U'"': out += "\\\""; break;
      case U'\\': out += "\\\\"; break;
      case U'\n': out += "\\n"; break;
      case U'\r': out += "\\r"; break;
      case U'\t': out += "\\t"; break;
      case U'\b': out += "\\b"; break;
      case U'\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c >= 0x10000) {
            uint32_t v = c - 0x10000;
            hex4(0xD800 | (v >> 10));
            hex4(0xDC00 | (v & 0x3FF));
          } else {
            hex4(c);
          }
        } else {
          detail::append_utf8(out, c);
        }
    }
  }
  out.push_back('"');
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Kind::String: return k.str();
    case Kind::Int: return std::to_string(k.as_int());
    case Kind::Float: {
      double f = k.as_float();
      if (std::isnan(f)) return "NaN";
      if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
      return format_float(f);
    }
    case Kind::Bool: return k.as_bool() ? "true" : "false";
    case Kind::None: return "null";
    default: throw TemplateError("keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int level);

void json_newline(std::string& out, const JsonOptions& o, int level) {
  out.push_back('\n');
  for (int i = 0; i < level; ++i) out += *o.indent;
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int level) {
  check_depth(level);
  switch (v.kind()) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.as_int()); return;
    case Kind::Float: {
      double f = v.as_float();
      out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : format_float(f);
      return;
    }
    case Kind::String: json_string(out, v.str(), o.ensure_ascii); return;
    case Kind::List:
      if (v.list_kind() == ListKind::List || v.list_kind() == ListKind::Tuple) {
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += o.item_separator;
          if (o.indent) json_newline(out, o, level + 1);
          json_value(out, items[i], o, level + 1);
        }
        if (o.indent) json_newline(out, o, level);
        out.push_back(']');
        return;
      }
      break;
    case Kind::Dict: {
      std::vector<std::pair<Value, Value>> items = v.dict().items;
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto& a, const auto& b) { return less(a.first, b.first); });
      }
      out.push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += o.item_separator;
        if (o.indent) json_newline(out, o, level + 1);
        std::string key = json_key(items[i].first);
        json_string(out, key, o.ensure_ascii);
        out += o.key_separator;
        json_value(out, items[i].second, o, level + 1);
      }
      if (o.indent) json_newline(out, o, level);
      out.push_back('}');
      return;
    }
    default: break;
  }
  if (v.is_undefined()) fail_undefined(v);
  throw TemplateError("Object of type " + type_name(v) + " is not JSON serializable");
}

}  // namespace

const Value* DictData::find(const Value& key) const {
  for (const auto& [k, v] : items) {
    if (equal(k, key)) return &v;
  }
  return nullptr;
}

void DictData::set(const Value& key, Value value) {
  for (auto& [k, v] : items) {
    if (equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

Value Value::list(std::vector<Value> items, ListKind kind) {
  return Value(ListV{std::make_shared<const std::vector<Value>>(std::move(items)), kind});
}

Value Value::range(int64_t start, int64_t stop, int64_t step) {
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::integer(i));
  ListV lv{std::make_shared<const std::vector<Value>>(std::move(items)), ListKind::Range, start, stop, step};
  return Value(std::move(lv));
}

Value Value::dict(DictData data) { return Value(DictV{std::make_shared<const DictData>(std::move(data))}); }

Value Value::make_namespace(DictData data) { return Value(NamespaceV{std::make_shared<DictData>(std::move(data))}); }

Value Value::function(std::string name, std::function<Value(Args&)> call, std::optional<std::string> repr) {
  return Value(
      FunctionV{std::make_shared<const Callable>(Callable{std::move(name), std::move(repr), std::move(call)})});
}

Value Value::iterator(std::string type_name, std::function<std::optional<Value>()> next) {
  return Value(IteratorV{std::make_shared<IteratorState>(IteratorState{std::move(type_name), std::move(next)})});
}

Value Value::loop(std::shared_ptr<LoopState> state) { return Value(LoopV{std::move(state)}); }

int64_t Value::as_int() const { return kind() == Kind::Bool ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }

double Value::as_float() const { return kind() == Kind::Float ? std::get<double>(v_) : static_cast<double>(as_int()); }

const void* Value::identity() const {
  switch (kind()) {
    case Kind::List: return std::get<ListV>(v_).items.get();
    case Kind::Dict: return std::get<DictV>(v_).data.get();
    case Kind::Namespace: return std::get<NamespaceV>(v_).data.get();
    case Kind::Function: return std::get<FunctionV>(v_).fn.get();
    case Kind::Iterator: return std::get<IteratorV>(v_).it.get();
    case Kind::Loop: return std::get<LoopV>(v_).loop.get();
    default: return nullptr;
  }
}

void fail_undefined(const Value& v) {
  throw TemplateError((v.undef().security ? "SecurityError: " : "UndefinedError: ") + v.undef().message);
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return v.markup() ? "Markup" : "str";
    case Kind::List:
      switch (v.list_kind()) {
        case ListKind::List: return "list";
        case ListKind::Tuple: return "tuple";
        case ListKind::Range: return "range";
        case ListKind::DictKeys: return "dict_keys";
        case ListKind::DictValues: return "dict_values";
        case ListKind::DictItems: return "dict_items";
      }
      break;
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Function: return "function";
    case Kind::Iterator: return v.iter().type_name;
    case Kind::Loop: return "LoopContext";
  }
  return "object";
}

std::string object_type_repr(const Value& v) { return v.is_none() ? "None" : type_name(v) + " object"; }

namespace {
thread_local bool strict_undefined_now = false;
// jinja2's StrictUndefined: printing, testing, iterating, measuring or comparing an undefined value raises too.
void check_strict(const Value& v) {
  if (strict_undefined_now && v.is_undefined()) fail_undefined(v);
}
}  // namespace

StrictUndefinedScope::StrictUndefinedScope(bool strict) : previous_(strict_undefined_now) {
  strict_undefined_now = strict;
}
StrictUndefinedScope::~StrictUndefinedScope() { strict_undefined_now = previous_; }

bool truthy(const Value& v) {
  check_strict(v);
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return v.as_bool();
    case Kind::Int: return v.as_int() != 0;
    case Kind::Float: return v.as_float() != 0.0;
    case Kind::String: return !v.str().empty();
    case Kind::List: return !v.items().empty();
    case Kind::Dict: return !v.dict().items.empty();
    default: return true;  // namespaces, callables, iterators (even exhausted ones), the loop inside its body
  }
}

bool equal(const Value& a, const Value& b) {
  check_strict(a);
  check_strict(b);
  if (a.is_number() && b.is_number()) return numbers_equal(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.str() == b.str();
    case Kind::List: return sequences_equal(a, b);
    case Kind::Dict: return dicts_equal(a.dict(), b.dict());
    default: return a.identity() == b.identity();
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) return numbers_less(a, b);
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list() && a.list_kind() == b.list_kind() &&
      (a.list_kind() == ListKind::List || a.list_kind() == ListKind::Tuple)) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateError("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool hashable(const Value& v) {
  switch (v.kind()) {
    case Kind::Dict:
    case Kind::Namespace: return false;
    case Kind::List:
      if (v.list_kind() == ListKind::Tuple) {
        return std::all_of(v.items().begin(), v.items().end(), [](const Value& x) { return hashable(x); });
      }
      return v.list_kind() == ListKind::Range;
    default: return true;
  }
}

std::string format_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  std::string sign = std::signbit(f) ? "-" : "";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(f), std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (sci[i] != '.') digits.push_back(sci[i]);
  }
  int exponent = std::stoi(sci.substr(e_pos + 1));
  int decpt = exponent + 1;
  int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return sign + "0." + std::string(-decpt, '0') + digits;
    if (decpt >= n) return sign + digits + std::string(decpt - n, '0') + ".0";
    return sign + digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  std::string mant = digits.substr(0, 1) + (n > 1 ? "." + digits.substr(1) : "");
  int e = decpt - 1;
  std::string exp_digits = std::to_string(std::abs(e));
  if (exp_digits.size() < 2) exp_digits = "0" + exp_digits;
  return sign + mant + "e" + (e < 0 ? "-" : "+") + exp_digits;
}

namespace {
[[noreturn]] void integer_overflow() { throw TemplateError("integer overflow (Troupe's Jinja integers are 64-bit)"); }
}  // namespace

int64_t add_int(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) integer_overflow();
  return r;
}

int64_t sub_int(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) integer_overflow();
  return r;
}

int64_t mul_int(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) integer_overflow();
  return r;
}

std::string to_str(const Value& v) {
  check_strict(v);
  switch (v.kind()) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return v.as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(v.as_int());
    case Kind::Float: return format_float(v.as_float());
    case Kind::String: return v.str();
    case Kind::Function:
      if (v.fn().repr) return *v.fn().repr;
      throw TemplateError("cannot print " + v.fn().name + ": Python prints its memory address");
    case Kind::Iterator:
      throw TemplateError("cannot print a " + v.iter().type_name + ": Python prints its memory address");
    case Kind::Loop: return loop_repr(v.loop_state());
    default: return repr_at(v, 0);
  }
}

std::string to_repr(const Value& v) { return repr_at(v, 0); }

std::vector<Value> iterate(const Value& v) {
  check_strict(v);
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: return v.items();
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict().items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : detail::decode(v.str())) {
        std::string s;
        detail::append_utf8(s, c);
        chars.push_back(Value::string(std::move(s)));  // iterating a Markup yields plain str
      }
      return chars;
    }
    case Kind::Iterator: {
      std::vector<Value> rest;
      while (auto item = v.iter().next()) rest.push_back(std::move(*item));
      return rest;
    }
    default: throw TemplateError("'" + type_name(v) + "' object is not iterable");
  }
}

bool iterable(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::List:
    case Kind::Dict:
    case Kind::String:
    case Kind::Iterator:
    case Kind::Loop: return true;
    default: return false;
  }
}

int64_t length(const Value& v) {
  check_strict(v);
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(detail::length(v.str()));
    case Kind::List: return static_cast<int64_t>(v.items().size());
    case Kind::Dict: return static_cast<int64_t>(v.dict().items.size());
    case Kind::Loop: return loop_length(v.loop_state());
    default: throw TemplateError("object of type '" + type_name(v) + "' has no len()");
  }
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) throw TemplateError("integer " + j.dump() + " exceeds 64 bits");
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      DictData d;
      d.items.reserve(j.size());
      for (const auto& [k, x] : j.items()) d.items.emplace_back(Value::string(k), from_json(x));
      return Value::dict(std::move(d));
    }
    default: throw TemplateError("unsupported JSON value " + j.dump());
  }
}

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_value(out, v, options, 0);
  return out;
}

}  // namespace troupe::tokenizers::jinja
