// Attributes and methods of Python's types as templates see them (str methods, dict.items/get/keys/values, the
// loop object's properties), and the globals of transformers' environment.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_eval.h"
#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

const std::set<std::string> kStrMethods = {
    "capitalize",   "casefold",   "center",    "count",       "encode",    "endswith",     "expandtabs",   "find",
    "format",       "format_map", "index",     "isalnum",     "isalpha",   "isascii",      "isdecimal",    "isdigit",
    "isidentifier", "islower",    "isnumeric", "isprintable", "isspace",   "istitle",      "isupper",      "join",
    "ljust",        "lower",      "lstrip",    "maketrans",   "partition", "removeprefix", "removesuffix", "replace",
    "rfind",        "rindex",     "rjust",     "rpartition",  "rsplit",    "rstrip",       "split",        "splitlines",
    "startswith",   "strip",      "swapcase",  "title",       "translate", "upper",        "zfill"};
// str methods whose results are not strings (the same on a markupsafe.Markup).
const std::set<std::string> kQueryMethods = {"count",   "endswith", "find",   "index",     "isalnum",
                                             "isspace", "rfind",    "rindex", "startswith"};
const std::set<std::string> kListMutators = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};
const std::set<std::string> kDictMutators = {"clear", "pop", "popitem", "setdefault", "update"};

Value unsupported_method(const std::string& type, const std::string& name) {
  return Value::function(type + "." + name, [type, name](Args&) -> Value {
    throw TemplateError(type + "." + name + "() is not supported by Troupe's Jinja");
  });
}

// Python's ADJUST_INDICES for str.find/count/startswith bounds.
void adjust_indices(const Args& args, size_t first, int64_t len, int64_t& start, int64_t& end) {
  start = 0;
  end = len;
  if (args.pos.size() > first && !args.pos[first].is_none()) start = int_arg("slice index", args.pos[first]);
  if (args.pos.size() > first + 1 && !args.pos[first + 1].is_none()) end = int_arg("slice index", args.pos[first + 1]);
  if (end > len) {
    end = len;
  } else if (end < 0) {
    end = std::max<int64_t>(end + len, 0);
  }
  if (start < 0) start = std::max<int64_t>(start + len, 0);
}

std::optional<std::u32string> opt_str(const std::optional<Value>& v, const std::string& what) {
  if (!v || v->is_none()) return std::nullopt;
  return decode(str_arg(what, *v));
}

Value str_value(const std::u32string& s) { return Value::string(encode(s)); }

Value str_list(const std::vector<std::u32string>& parts) {
  std::vector<Value> items;
  for (const auto& p : parts) items.push_back(str_value(p));
  return Value::list(std::move(items));
}

bool tailmatch(const std::u32string& s, const std::u32string& sub, int64_t start, int64_t end, bool at_end) {
  end -= static_cast<int64_t>(sub.size());
  if (end < start) return false;
  if (sub.empty()) return true;
  size_t at = static_cast<size_t>(at_end ? end : start);
  return s.compare(at, sub.size(), sub) == 0;
}

Value starts_or_ends(const std::string& method, const std::u32string& s, Args& args) {
  if (args.pos.empty()) throw TemplateError(method + "() takes at least 1 argument (0 given)");
  int64_t start, end;
  adjust_indices(args, 1, static_cast<int64_t>(s.size()), start, end);
  bool at_end = method == "endswith";
  const Value& prefix = args.pos[0];
  if (prefix.is_list() && prefix.list_kind() == ListKind::Tuple) {
    for (const Value& p : prefix.items()) {
      if (tailmatch(s, decode(str_arg(method, p)), start, end, at_end)) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  return Value::boolean(tailmatch(s, decode(str_arg(method, prefix)), start, end, at_end));
}

Value str_format(const std::string& fmt, Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) throw TemplateError("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of("!:.[") != std::string::npos) {
        throw TemplateError("str.format() with conversions, format specs or attribute lookups is not supported");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_index >= args.pos.size()) throw TemplateError("Replacement index out of range for str.format()");
        v = &args.pos[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
        size_t k = std::stoul(field);
        if (k >= args.pos.size()) throw TemplateError("Replacement index out of range for str.format()");
        v = &args.pos[k];
      } else {
        for (const auto& [key, val] : args.kw) {
          if (key == field) v = &val;
        }
        if (v == nullptr) throw TemplateError("KeyError: '" + field + "'");
      }
      out += to_str(*v);
      i = close;
    } else if (c == '}') {
      throw TemplateError("Single '}' encountered in format string");
    } else {
      out.push_back(c);
    }
  }
  return Value::string(std::move(out));
}

Value str_join(const std::string& sep, Args& args) {
  if (args.pos.size() != 1) throw TemplateError("join() takes exactly one argument");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(args.pos[0])) {
    if (!item.is_string()) throw TemplateError("sequence item: expected str instance, " + type_name(item) + " found");
    if (!first) out += sep;
    out += item.str();
    first = false;
  }
  return Value::string(std::move(out));
}

Value bound(const std::string& type, const std::string& name, std::function<Value(Args&)> fn) {
  return Value::function(type + "." + name, std::move(fn));
}

std::optional<Value> dict_attribute(const Value& obj, const std::string& name) {
  if (kDictMutators.count(name)) return unsupported_method("dict", name);
  if (name == "fromkeys") return unsupported_method("dict", name);
  auto view = [obj](ListKind kind) {
    std::vector<Value> items;
    for (const auto& [k, v] : obj.dict().items) {
      items.push_back(kind == ListKind::DictKeys     ? k
                      : kind == ListKind::DictValues ? v
                                                     : Value::list({k, v}, ListKind::Tuple));
    }
    return Value::list(std::move(items), kind);
  };
  if (name == "items" || name == "keys" || name == "values") {
    ListKind kind = name == "items" ? ListKind::DictItems : name == "keys" ? ListKind::DictKeys : ListKind::DictValues;
    return bound("dict", name, [view, kind, name](Args& a) {
      bind(name, a, {});
      return view(kind);
    });
  }
  if (name == "copy") {
    return bound("dict", name, [obj](Args& a) {
      bind("copy", a, {});
      return Value::dict(obj.dict());
    });
  }
  if (name == "get") {
    return bound("dict", name, [obj](Args& a) {
      auto p = bind("get", a, {"key", "default"}, 1);
      if (!hashable(*p[0])) throw TemplateError("unhashable type: '" + type_name(*p[0]) + "'");
      const Value* v = obj.dict().find(*p[0]);
      return v != nullptr ? *v : p[1] ? *p[1] : Value::none();
    });
  }
  return std::nullopt;
}

std::optional<Value> sequence_attribute(const Value& obj, const std::string& name) {
  ListKind kind = obj.list_kind();
  if (kind == ListKind::List && kListMutators.count(name)) return unsupported_method("list", name);
  if (kind == ListKind::Range && (name == "start" || name == "stop" || name == "step")) {
    const auto& r = obj.list_v();
    return Value::integer(name == "start" ? r.range_start : name == "stop" ? r.range_stop : r.range_step);
  }
  if (kind == ListKind::List || kind == ListKind::Tuple || kind == ListKind::Range) {
    if (name == "count") {
      return bound(type_name(obj), name, [obj](Args& a) {
        auto p = bind("count", a, {"value"}, 1);
        int64_t n = 0;
        for (const Value& x : obj.items()) n += equal(x, *p[0]);
        return Value::integer(n);
      });
    }
    if (name == "index") {
      return bound(type_name(obj), name, [obj](Args& a) {
        auto p = bind("index", a, {"value"}, 1);
        for (size_t i = 0; i < obj.items().size(); ++i) {
          if (equal(obj.items()[i], *p[0])) return Value::integer(static_cast<int64_t>(i));
        }
        throw TemplateError("ValueError: " + to_repr(*p[0]) + " is not in " + type_name(obj));
      });
    }
    if (name == "copy" && kind == ListKind::List) {
      return bound("list", name, [obj](Args& a) {
        bind("copy", a, {});
        return Value::list(obj.items());
      });
    }
  }
  if ((kind == ListKind::DictKeys || kind == ListKind::DictItems) && name == "isdisjoint") {
    return unsupported_method(type_name(obj), name);
  }
  if (kind >= ListKind::DictKeys && name == "mapping") return unsupported_method(type_name(obj), name);
  return std::nullopt;
}

std::optional<Value> number_attribute(const Value& obj, const std::string& name) {
  if (name == "real") return obj.kind() == Kind::Float ? obj : Value::integer(obj.as_int());
  if (name == "imag") return obj.kind() == Kind::Float ? Value::real(0.0) : Value::integer(0);
  if (obj.kind() == Kind::Float) {
    if (name == "is_integer") {
      double f = obj.as_float();
      return bound("float", name, [f](Args& a) {
        bind("is_integer", a, {});
        return Value::boolean(std::isfinite(f) && f == std::floor(f));
      });
    }
    static const std::set<std::string> kFloat = {"as_integer_ratio", "conjugate", "fromhex", "hex"};
    if (kFloat.count(name)) return unsupported_method("float", name);
    return std::nullopt;
  }
  if (name == "numerator") return Value::integer(obj.as_int());
  if (name == "denominator") return Value::integer(1);
  static const std::set<std::string> kInt = {"as_integer_ratio", "bit_count",  "bit_length",
                                             "conjugate",        "from_bytes", "to_bytes"};
  if (kInt.count(name)) return unsupported_method(type_name(obj), name);
  return std::nullopt;
}

std::optional<Value> loop_attribute(const Value& obj, const std::string& name) {
  LoopState& l = obj.loop_state();
  if (name == "index0") return Value::integer(l.index0);
  if (name == "index") return Value::integer(l.index0 + 1);
  if (name == "first") return Value::boolean(l.index0 == 0);
  if (name == "last") return Value::boolean(l.peek() == nullptr);
  if (name == "length") return Value::integer(l.length());
  if (name == "revindex") return Value::integer(l.length() - l.index0);
  if (name == "revindex0") return Value::integer(l.length() - l.index0 - 1);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") return l.index0 == 0 ? Value::undefined("there is no previous item") : l.before;
  if (name == "nextitem") {
    const Value* next = l.peek();
    return next != nullptr ? *next : Value::undefined("there is no next item");
  }
  if (name == "cycle") {
    return bound("loop", name, [obj](Args& a) {
      if (a.pos.empty()) throw TemplateError("no items for cycling given");
      return a.pos[static_cast<size_t>(obj.loop_state().index0) % a.pos.size()];
    });
  }
  if (name == "changed") {
    return bound("loop", name, [obj](Args& a) {
      LoopState& s = obj.loop_state();
      bool changed = !s.changed_last || s.changed_last->size() != a.pos.size() ||
                     !std::equal(a.pos.begin(), a.pos.end(), s.changed_last->begin(), equal);
      if (changed) s.changed_last = a.pos;
      return Value::boolean(changed);
    });
  }
  return std::nullopt;
}

Value make_dict_from(const std::string& what, Args& args) {
  DictData d;
  if (args.pos.size() > 1)
    throw TemplateError(what + " expected at most 1 argument, got " + std::to_string(args.pos.size()));
  if (!args.pos.empty()) {
    const Value& src = args.pos[0];
    if (src.kind() == Kind::Dict) {
      d = src.dict();
    } else if (src.kind() == Kind::Namespace) {
      throw TemplateError("'Namespace' object is not iterable");
    } else {
      for (const Value& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2)
          throw TemplateError(what + " update sequence element has length " + std::to_string(kv.size()) +
                              "; 2 is required");
        if (!hashable(kv[0])) throw TemplateError("unhashable type: '" + type_name(kv[0]) + "'");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.kw) d.set(Value::string(k), v);
  return Value::dict(std::move(d));
}

std::string strftime_now(const std::string& format) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::string fmt;  // Python's datetime.strftime handles %f itself; the rest goes to the C library
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '%' && i + 1 < format.size() && format[i + 1] == 'f') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(micros));
      fmt += buf;
      ++i;
    } else if (format[i] == '%' && i + 1 < format.size()) {
      fmt += format.substr(i, 2);
      ++i;
    } else {
      fmt.push_back(format[i]);
    }
  }
  std::string out(256 + fmt.size() * 8, '\0');
  size_t n = fmt.empty() ? 0 : std::strftime(out.data(), out.size(), fmt.c_str(), &tm);
  out.resize(n);
  return out;
}

}  // namespace

Value call_str_method(const std::string& m, const std::string& utf8, Args& args) {
  std::u32string s = decode(utf8);
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    auto p = bind(m, args, {"chars"});
    return str_value(strip(s, opt_str(p[0], m), m != "rstrip", m != "lstrip"));
  }
  if (m == "split" || m == "rsplit") {
    auto p = bind(m, args, {"sep", "maxsplit"});
    int64_t maxsplit = p[1] ? int_arg(m, *p[1]) : -1;
    auto sep = opt_str(p[0], m);
    if (sep && sep->empty()) throw TemplateError("ValueError: empty separator");
    return str_list(m == "split" ? split(s, sep, maxsplit) : rsplit(s, sep, maxsplit));
  }
  if (m == "splitlines") {
    auto p = bind(m, args, {"keepends"});
    return str_list(splitlines(s, p[0] && truthy(*p[0])));
  }
  if (m == "upper" || m == "lower" || m == "title" || m == "capitalize") {
    bind(m, args, {});
    return str_value(m == "upper" ? upper(s) : m == "lower" ? lower(s) : m == "title" ? title(s) : capitalize(s));
  }
  if (m == "startswith" || m == "endswith") return starts_or_ends(m, s, args);
  if (m == "replace") {
    auto p = bind(m, args, {"old", "new", "count"}, 2);
    int64_t count = p[2] ? int_arg(m, *p[2]) : -1;
    return str_value(replace(s, decode(str_arg(m, *p[0])), decode(str_arg(m, *p[1])), count));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
    if (args.pos.empty() || !args.kw.empty()) throw TemplateError(m + "() takes 1 to 3 positional arguments");
    std::u32string sub = decode(str_arg(m, args.pos[0]));
    int64_t start, end;
    adjust_indices(args, 1, static_cast<int64_t>(s.size()), start, end);
    if (m == "count") return Value::integer(start > static_cast<int64_t>(s.size()) ? 0 : count(s, sub, start, end));
    bool reverse = m[0] == 'r';
    int64_t at = start > static_cast<int64_t>(s.size()) ? -1 : find(s, sub, start, end, reverse);
    if (at < 0 && (m == "index" || m == "rindex")) throw TemplateError("ValueError: substring not found");
    return Value::integer(at);
  }
  if (m == "join") return str_join(utf8, args);
  if (m == "removeprefix" || m == "removesuffix") {
    auto p = bind(m, args, {"affix"}, 1);
    std::u32string a = decode(str_arg(m, *p[0]));
    bool pre = m == "removeprefix";
    bool has = s.size() >= a.size() && s.compare(pre ? 0 : s.size() - a.size(), a.size(), a) == 0;
    if (!has || a.empty()) return Value::string(utf8);
    return str_value(pre ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
  }
  if (m == "center" || m == "ljust" || m == "rjust") {
    auto p = bind(m, args, {"width", "fillchar"}, 1);
    int64_t width = int_arg(m, *p[0]);
    std::u32string fill = p[1] ? decode(str_arg(m, *p[1])) : U" ";
    if (fill.size() != 1) throw TemplateError("The fill character must be exactly one character long");
    int64_t pad = width - static_cast<int64_t>(s.size());
    if (pad <= 0) return Value::string(utf8);
    if (m == "center") return str_value(center(s, width, fill[0]));
    return str_value(m == "ljust" ? s + std::u32string(pad, fill[0]) : std::u32string(pad, fill[0]) + s);
  }
  if (m == "zfill") {
    auto p = bind(m, args, {"width"}, 1);
    int64_t pad = int_arg(m, *p[0]) - static_cast<int64_t>(s.size());
    if (pad <= 0) return Value::string(utf8);
    bool sign = !s.empty() && (s[0] == U'+' || s[0] == U'-');
    return str_value(sign ? s.substr(0, 1) + std::u32string(pad, U'0') + s.substr(1) : std::u32string(pad, U'0') + s);
  }
  if (m == "partition" || m == "rpartition") {
    auto p = bind(m, args, {"sep"}, 1);
    std::u32string sep = decode(str_arg(m, *p[0]));
    if (sep.empty()) throw TemplateError("ValueError: empty separator");
    size_t at = m == "partition" ? s.find(sep) : s.rfind(sep);
    std::vector<Value> parts;
    if (at == std::u32string::npos) {
      parts = m == "partition" ? std::vector<Value>{str_value(s), Value::string(""), Value::string("")}
                               : std::vector<Value>{Value::string(""), Value::string(""), str_value(s)};
    } else {
      parts = {str_value(s.substr(0, at)), str_value(sep), str_value(s.substr(at + sep.size()))};
    }
    return Value::list(std::move(parts), ListKind::Tuple);
  }
  if (m == "isspace" || m == "isalnum") {
    bind(m, args, {});
    bool ok = !s.empty() && std::all_of(s.begin(), s.end(), m == "isspace" ? is_space : is_alnum);
    return Value::boolean(ok);
  }
  if (m == "format") return str_format(utf8, args);
  throw TemplateError("str." + m + "() is not supported by Troupe's Jinja");
}

std::optional<Value> python_attribute(Evaluator& ev, const Value& obj, const std::string& name) {
  (void)ev;
  switch (obj.kind()) {
    case Kind::String:
      if (!kStrMethods.count(name)) return std::nullopt;
      if (obj.markup() && !kQueryMethods.count(name)) return unsupported_method("Markup", name);  // they escape args
      return bound("str", name, [name, s = obj.str()](Args& a) { return call_str_method(name, s, a); });
    case Kind::Dict: return dict_attribute(obj, name);
    case Kind::List: return sequence_attribute(obj, name);
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float: return number_attribute(obj, name);
    case Kind::Namespace: {
      const Value* v = obj.ns().find(Value::string(name));
      return v != nullptr ? std::optional<Value>(*v) : std::nullopt;
    }
    case Kind::Loop: return loop_attribute(obj, name);
    default: return std::nullopt;
  }
}

bool is_mutating_method(const Value& obj, const std::string& name) {
  if (obj.kind() == Kind::Dict) return kDictMutators.count(name) > 0;
  return obj.is_list() && obj.list_kind() == ListKind::List && kListMutators.count(name) > 0;
}

void add_globals(Scope& scope) {
  scope.vars["range"] = Value::function("range", [](Args& a) {
    if (!a.kw.empty()) throw TemplateError("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3) throw TemplateError("range expected 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = int_arg("range", a.pos[0]);
    } else {
      start = int_arg("range", a.pos[0]);
      stop = int_arg("range", a.pos[1]);
      if (a.pos.size() == 3) step = int_arg("range", a.pos[2]);
    }
    if (step == 0) throw TemplateError("ValueError: range() arg 3 must not be zero");
    long double n = step > 0 ? (static_cast<long double>(stop) - start) / step
                             : (static_cast<long double>(start) - stop) / -static_cast<long double>(step);
    if (n > kMaxRange) {
      throw TemplateError("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    return Value::range(start, stop, step);
  });
  scope.vars["dict"] = Value::function("dict", [](Args& a) { return make_dict_from("dict", a); });
  scope.vars["namespace"] = Value::function("namespace", [](Args& a) {
    Value d = make_dict_from("namespace", a);
    for (const auto& [k, v] : d.dict().items) {
      if (k.is_string() && !k.str().empty() && k.str()[0] == '_') {
        throw TemplateError(
            "SecurityError: Chat templates cannot store underscore-prefixed attributes on a "
            "namespace, but got '" +
            k.str() + "'. Please rename the attribute.");
      }
    }
    return Value::make_namespace(d.dict());
  });
  scope.vars["raise_exception"] = Value::function("raise_exception", [](Args& a) -> Value {
    auto p = bind("raise_exception", a, {"message"}, 1);
    throw RaisedError(to_str(*p[0]));
  });
  scope.vars["strftime_now"] = Value::function("strftime_now", [](Args& a) {
    auto p = bind("strftime_now", a, {"format"}, 1);
    return Value::string(strftime_now(str_arg("strftime_now", *p[0])));
  });
  for (const char* name : {"lipsum", "cycler", "joiner"}) {
    std::string n = name;
    scope.vars[n] =
        Value::function(n, [n](Args&) -> Value { throw TemplateError(n + "() is not supported by Troupe's Jinja"); });
  }
}

}  // namespace troupe::tokenizers::jinja::detail
