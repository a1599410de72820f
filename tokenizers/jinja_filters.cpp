// jinja2's filters (jinja2/filters.py, with transformers' tojson) and tests (jinja2/tests.py). The filters that are
// generators in jinja2 (map, select/reject[attr], unique, items, batch, slice) return lazy one-shot iterators here
// too, so that they print, count and test (always true) as they do in Python.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_eval.h"
#include "tokenizers/jinja_parser.h"
#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

using Pull = std::function<std::optional<Value>()>;

const std::set<std::string> kUnsupportedFilters = {"filesizeformat", "format",    "groupby", "pprint",   "random",
                                                   "striptags",      "urlencode", "urlize",  "wordwrap", "xmlattr"};
const std::set<std::string> kFilters = {
    "abs",       "attr",       "batch",       "capitalize", "center",  "count",
    "d",         "default",    "dictsort",    "e",          "escape",  "filesizeformat",
    "first",     "float",      "forceescape", "format",     "groupby", "indent",
    "int",       "join",       "last",        "length",     "list",    "lower",
    "items",     "map",        "min",         "max",        "pprint",  "random",
    "reject",    "rejectattr", "replace",     "reverse",    "round",   "safe",
    "select",    "selectattr", "slice",       "sort",       "string",  "striptags",
    "sum",       "title",      "trim",        "truncate",   "unique",  "upper",
    "urlencode", "urlize",     "wordcount",   "wordwrap",   "xmlattr", "tojson"};
const std::set<std::string> kTests = {
    "odd",     "even",   "divisibleby", "defined",  "undefined", "filter", "test",    "none",
    "boolean", "false",  "true",        "integer",  "float",     "lower",  "upper",   "string",
    "mapping", "number", "sequence",    "iterable", "callable",  "sameas", "escaped", "in",
    "==",      "eq",     "equalto",     "!=",       "ne",        ">",      "gt",      "greaterthan",
    "ge",      ">=",     "<",           "lt",       "lessthan",  "<=",     "le"};

std::string soft_str(const Value& v) { return v.is_string() ? v.str() : to_str(v); }
Value soft_value(const Value& v) { return v.is_string() ? v : Value::string(to_str(v)); }

Value ignore_case(const Value& v) { return v.is_string() ? Value::string(encode(lower(decode(v.str())))) : v; }

// A generator: nothing runs until the first item is asked for (jinja2's generator filters fail lazily too).
Value generator(std::function<Pull()> start) {
  auto pull = std::make_shared<Pull>();
  return Value::iterator("generator", [pull, start = std::move(start)]() -> std::optional<Value> {
    if (!*pull) *pull = start();
    return (*pull)();
  });
}

// Pulls the items of `v` one by one (an iterator lazily, anything else materialised).
Pull pull_items(const Value& v) {
  if (v.kind() == Kind::Iterator) return [v] { return v.iter().next(); };
  auto items = std::make_shared<std::vector<Value>>(iterate(v));
  auto i = std::make_shared<size_t>(0);
  return [items, i]() -> std::optional<Value> {
    if (*i >= items->size()) return std::nullopt;
    return (*items)[(*i)++];
  };
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
std::function<Value(const Value&)> attrgetter(Evaluator& ev, const Value& attribute, bool case_insensitive,
                                              std::optional<Value> default_value = std::nullopt) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    std::string s = attribute.str();
    size_t start = 0;
    while (true) {
      size_t dot = s.find('.', start);
      std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits ? Value::integer(std::stoll(part)) : Value::string(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  } else {
    parts.push_back(attribute);
  }
  return [&ev, parts, case_insensitive, default_value](const Value& item) {
    Value v = item;
    for (const Value& part : parts) {
      v = ev.getitem(v, part);
      if (default_value && v.is_undefined()) v = *default_value;
    }
    return case_insensitive ? ignore_case(v) : v;
  };
}

std::function<Value(const Value&)> multi_attrgetter(Evaluator& ev, const Value& attribute, bool case_insensitive) {
  if (attribute.is_undefined() || attribute.is_none()) {
    return [case_insensitive](const Value& v) { return case_insensitive ? ignore_case(v) : v; };
  }
  if (!attribute.is_string() || attribute.str().find(',') == std::string::npos) {
    return attrgetter(ev, attribute, case_insensitive);
  }
  std::vector<std::function<Value(const Value&)>> getters;
  std::string s = attribute.str();
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    getters.push_back(attrgetter(ev, Value::string(s.substr(start, comma - start)), case_insensitive));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return [getters](const Value& v) {
    std::vector<Value> keys;
    for (const auto& g : getters) keys.push_back(g(v));
    return Value::list(std::move(keys));
  };
}

bool arg_true(const std::optional<Value>& v) { return v && truthy(*v); }
Value arg_or(const std::optional<Value>& v, Value fallback) { return v ? *v : std::move(fallback); }

Value do_sort(Evaluator& ev, const Value& value, Args& args) {
  auto p = bind("sort", args, {"reverse", "case_sensitive", "attribute"});
  auto key = multi_attrgetter(ev, arg_or(p[2], Value::none()), !arg_true(p[1]));
  std::vector<Value> items = iterate(value);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& v : items) keyed.emplace_back(key(v), std::move(v));
  bool reverse = arg_true(p[0]);
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? less(b.first, a.first) : less(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value do_dictsort(const Value& value, Args& args) {
  auto p = bind("dictsort", args, {"case_sensitive", "by", "reverse"});
  std::string by = p[1] ? str_arg("dictsort", *p[1]) : "key";
  if (by != "key" && by != "value") throw TemplateError("You can only sort by either \"key\" or \"value\"");
  if (value.is_undefined()) fail_undefined(value);
  if (value.kind() != Kind::Dict) throw TemplateError("'" + type_name(value) + "' object has no attribute 'items'");
  bool insensitive = !arg_true(p[0]);
  std::vector<Value> items;
  for (const auto& [k, v] : value.dict().items) items.push_back(Value::list({k, v}, ListKind::Tuple));
  size_t pos = by == "key" ? 0 : 1;
  bool reverse = arg_true(p[2]);
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    Value ka = insensitive ? ignore_case(a.items()[pos]) : a.items()[pos];
    Value kb = insensitive ? ignore_case(b.items()[pos]) : b.items()[pos];
    return reverse ? less(kb, ka) : less(ka, kb);
  });
  return Value::list(std::move(items));
}

Value do_min_max(Evaluator& ev, const Value& value, Args& args, bool is_max) {
  auto p = bind(is_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  auto key = multi_attrgetter(ev, arg_or(p[1], Value::none()), !arg_true(p[0]));
  std::vector<Value> items = iterate(value);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (is_max ? less(best_key, k) : less(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value do_join(Evaluator& ev, const Value& value, Args& args) {
  auto p = bind("join", args, {"d", "attribute"});
  std::string sep = p[0] ? to_str(*p[0]) : "";
  std::function<Value(const Value&)> get;
  if (p[1] && !p[1]->is_none()) get = attrgetter(ev, *p[1], false);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(value)) {
    if (!first) out += sep;
    out += to_str(get ? get(item) : item);
    first = false;
  }
  return Value::string(std::move(out));
}

Value do_tojson(const Value& value, Args& args) {
  auto p = bind("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = arg_true(p[0]);
  if (p[1] && !p[1]->is_none()) {
    if (p[1]->is_string()) {
      o.indent = p[1]->str();
    } else {
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(int_arg("tojson indent", *p[1]), 0)), ' ');
    }
    o.item_separator = ",";
  }
  if (p[2] && !p[2]->is_none()) {
    std::vector<Value> seps = iterate(*p[2]);
    if (seps.size() != 2) throw TemplateError("tojson separators must be a pair of strings");
    o.item_separator = str_arg("tojson separators", seps[0]);
    o.key_separator = str_arg("tojson separators", seps[1]);
  }
  o.sort_keys = arg_true(p[3]);
  return Value::string(to_json(value, o));
}

Value do_int(const Value& value, Args& args) {
  auto p = bind("int", args, {"default", "base"});
  Value fallback = arg_or(p[0], Value::integer(0));
  int64_t base = p[1] ? int_arg("int", *p[1]) : 10;
  if (value.is_undefined()) fail_undefined(value);
  if (value.is_bool() || value.is_int()) return Value::integer(value.as_int());
  if (value.kind() == Kind::Float) {
    double f = value.as_float();
    if (!std::isfinite(f) || std::fabs(f) >= 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(f));
  }
  if (!value.is_string()) return fallback;
  std::string s = encode(strip(decode(value.str()), std::nullopt, true, true));
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    auto alnum = [](char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); };
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && alnum(s[i - 1]) && alnum(s[i + 1])) {
      continue;
    }
    digits.push_back(s[i]);
  }
  size_t i = 0;
  bool negative = false;
  if (i < digits.size() && (digits[i] == '+' || digits[i] == '-')) negative = digits[i++] == '-';
  if (base == 16 || base == 8 || base == 2) {
    char prefix = base == 16 ? 'x' : base == 8 ? 'o' : 'b';
    if (i + 1 < digits.size() && digits[i] == '0' && (digits[i + 1] | 0x20) == prefix) i += 2;
  }
  int64_t v = 0;
  auto res = std::from_chars(digits.data() + i, digits.data() + digits.size(), v, static_cast<int>(base));
  if (i < digits.size() && res.ec == std::errc() && res.ptr == digits.data() + digits.size()) {
    return Value::integer(negative ? -v : v);
  }
  // "42.23"|int is 42: jinja2 retries through float().
  double f = 0;
  auto fres = std::from_chars(s.data() + (s[0] == '+'), s.data() + s.size(), f);
  if (!s.empty() && fres.ec == std::errc() && fres.ptr == s.data() + s.size() && std::isfinite(f) &&
      std::fabs(f) < 9.2e18) {
    return Value::integer(static_cast<int64_t>(f));
  }
  return fallback;
}

Value do_float(const Value& value, Args& args) {
  auto p = bind("float", args, {"default"});
  Value fallback = arg_or(p[0], Value::real(0.0));
  if (value.is_undefined()) fail_undefined(value);
  if (value.is_number()) return Value::real(value.as_float());
  if (!value.is_string()) return fallback;
  std::string s = encode(strip(decode(value.str()), std::nullopt, true, true));
  std::string lowered;
  for (char c : s) lowered.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c);
  size_t sign = !lowered.empty() && (lowered[0] == '+' || lowered[0] == '-') ? 1 : 0;
  std::string body = lowered.substr(sign);
  double f = 0;
  if (body == "inf" || body == "infinity") {
    f = INFINITY;
  } else if (body == "nan") {
    f = NAN;
  } else {
    auto res = std::from_chars(s.data() + sign, s.data() + s.size(), f);
    if (body.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size()) return fallback;
  }
  return Value::real(sign && lowered[0] == '-' ? -f : f);
}

Value do_round(const Value& value, Args& args) {
  auto p = bind("round", args, {"precision", "method"}, 0);
  int64_t precision = p[0] ? int_arg("round", *p[0]) : 0;
  std::string method = p[1] ? str_arg("round", *p[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    throw TemplateError("method must be common, ceil or floor");
  }
  if (value.is_undefined()) fail_undefined(value);
  if (!value.is_number()) throw TemplateError("type " + type_name(value) + " doesn't define __round__ method");
  if (method == "common") {
    if (value.kind() != Kind::Float) {
      if (precision >= 0) return Value::integer(value.as_int());
      throw TemplateError("round() of an int to negative digits is not supported");
    }
    double f = value.as_float();
    if (!std::isfinite(f) || precision > 300) return value;
    if (precision < 0) throw TemplateError("round() to negative digits is not supported");
    char buf[2048];
    auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::fixed, static_cast<int>(precision));
    double r = 0;
    std::from_chars(buf, res.ptr, r);
    return Value::real(r);
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double scaled = value.as_float() * scale;
  return Value::real((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value do_indent(const Value& value, Args& args) {
  auto p = bind("indent", args, {"width", "first", "blank"});
  std::string indention;
  if (p[0] && p[0]->is_string()) {
    indention = p[0]->str();
  } else {
    indention.assign(static_cast<size_t>(p[0] ? std::max<int64_t>(int_arg("indent", *p[0]), 0) : 4), ' ');
  }
  std::u32string s = decode(soft_str(value)) + U"\n";
  std::u32string ind = decode(indention);
  std::vector<std::u32string> lines = splitlines(s, false);
  std::u32string rv;
  if (arg_true(p[2])) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i > 0 ? U"\n" + ind : U"") + lines[i];
  } else {
    rv = lines.empty() ? U"" : lines[0];
    if (lines.size() > 1) {
      rv += U"\n";
      for (size_t i = 1; i < lines.size(); ++i) rv += (i > 1 ? U"\n" : U"") + (lines[i].empty() ? U"" : ind) + lines[i];
    }
  }
  if (arg_true(p[1])) rv = ind + rv;
  return Value::string(encode(rv), value.is_string() && value.markup());
}

Value do_truncate(const Value& value, Args& args) {
  auto p = bind("truncate", args, {"length", "killwords", "end", "leeway"});
  int64_t length = p[0] ? int_arg("truncate", *p[0]) : 255;
  std::u32string end = decode(p[2] ? str_arg("truncate", *p[2]) : "...");
  int64_t leeway = p[3] && !p[3]->is_none() ? int_arg("truncate", *p[3]) : 5;
  if (length < static_cast<int64_t>(end.size()))
    throw TemplateError("expected length >= " + std::to_string(end.size()));
  std::u32string s = decode(soft_str(value));
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value::string(encode(s));
  std::u32string head = s.substr(0, static_cast<size_t>(length) - end.size());
  if (arg_true(p[1])) return Value::string(encode(head + end));
  size_t space = head.rfind(U' ');
  return Value::string(encode((space == std::u32string::npos ? head : head.substr(0, space)) + end));
}

Value do_title(const Value& value) {
  // jinja2 splits on runs of [-\s({\[<] and upper-cases each piece's first character, lower-casing the rest.
  std::u32string s = decode(soft_str(value));
  auto is_sep = [](char32_t c) { return c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<' || is_space(c); };
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    bool sep = is_sep(s[i]);
    while (j < s.size() && is_sep(s[j]) == sep) ++j;
    std::u32string piece = s.substr(i, j - i);
    out += sep ? piece : upper(piece.substr(0, 1)) + lower(piece.substr(1));
    i = j;
  }
  return Value::string(encode(out));
}

Value do_wordcount(const Value& value) {
  std::u32string s = decode(soft_str(value));
  int64_t n = 0;
  for (size_t i = 0; i < s.size();) {
    if (!is_word(s[i])) {
      ++i;
      continue;
    }
    ++n;
    while (i < s.size() && is_word(s[i])) ++i;
  }
  return Value::integer(n);
}

Value html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return Value::string(std::move(out), true);
}

Value do_reverse(const Value& value) {
  if (value.is_string()) {
    std::u32string s = decode(value.str());
    std::reverse(s.begin(), s.end());
    return Value::string(encode(s), value.markup());
  }
  if (value.kind() == Kind::Iterator) {
    std::vector<Value> items = iterate(value);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (value.is_undefined() || value.is_list() || value.kind() == Kind::Dict) {
    std::vector<Value> items = iterate(value);
    std::reverse(items.begin(), items.end());
    auto rest = std::make_shared<std::vector<Value>>(std::move(items));
    auto i = std::make_shared<size_t>(0);
    std::string type = value.kind() == Kind::Dict ? "dict_reversekeyiterator" : type_name(value) + "_reverseiterator";
    return Value::iterator(type, [rest, i]() -> std::optional<Value> {
      if (*i >= rest->size()) return std::nullopt;
      return (*rest)[(*i)++];
    });
  }
  throw TemplateError("argument must be iterable");
}

Value do_first_last(const Value& value, bool last) {
  if (last) {
    if (value.kind() == Kind::Iterator) throw TemplateError("'" + type_name(value) + "' object is not reversible");
    if (!value.is_undefined() && !value.is_list() && !value.is_string() && value.kind() != Kind::Dict) {
      throw TemplateError("'" + type_name(value) + "' object is not reversible");
    }
    std::vector<Value> items = iterate(value);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
  }
  if (value.kind() == Kind::Iterator) {
    if (auto v = value.iter().next()) return *v;
    return Value::undefined("No first item, sequence was empty.");
  }
  std::vector<Value> items = iterate(value);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value do_map(Evaluator& ev, const Value& value, Args& args) {
  return generator([&ev, value, args]() -> Pull {
    if (!truthy(value)) return [] { return std::optional<Value>(); };
    std::function<Value(const Value&)> func;
    Args rest = args;
    auto it = std::find_if(rest.kw.begin(), rest.kw.end(), [](const auto& kw) { return kw.first == "attribute"; });
    if (it != rest.kw.end()) {
      Value attribute = it->second;
      rest.kw.erase(it);
      std::optional<Value> fallback;
      auto d = std::find_if(rest.kw.begin(), rest.kw.end(), [](const auto& kw) { return kw.first == "default"; });
      if (d != rest.kw.end()) {
        fallback = d->second;
        rest.kw.erase(d);
      }
      if (!rest.kw.empty()) throw TemplateError("Unexpected keyword argument '" + rest.kw[0].first + "'");
      func = attrgetter(ev, attribute, false, fallback && !fallback->is_none() ? fallback : std::nullopt);
    } else {
      if (rest.pos.empty()) throw TemplateError("map requires a filter argument");
      std::string name = str_arg("map", rest.pos[0]);
      rest.pos.erase(rest.pos.begin());
      func = [&ev, name, rest](const Value& item) {
        Args a = rest;
        return ev.call_filter(name, item, a);
      };
    }
    Pull items = pull_items(value);
    return [items, func]() -> std::optional<Value> {
      auto v = items();
      if (!v) return std::nullopt;
      return func(*v);
    };
  });
}

Value do_select(Evaluator& ev, const Value& value, Args& args, bool select, bool lookup_attr) {
  return generator([&ev, value, args, select, lookup_attr]() -> Pull {
    if (!truthy(value)) return [] { return std::optional<Value>(); };
    std::function<Value(const Value&)> trans = [](const Value& v) { return v; };
    size_t off = 0;
    if (lookup_attr) {
      if (args.pos.empty()) throw TemplateError("Missing parameter for attribute name");
      trans = attrgetter(ev, args.pos[0], false);
      off = 1;
    }
    std::function<bool(const Value&)> test = [](const Value& v) { return truthy(v); };
    if (args.pos.size() > off) {
      std::string name = str_arg("test name", args.pos[off]);
      Args rest;
      rest.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(off) + 1, args.pos.end());
      rest.kw = args.kw;
      test = [&ev, name, rest](const Value& v) {
        Args a = rest;
        return ev.call_test(name, v, a);
      };
    }
    Pull items = pull_items(value);
    return [items, trans, test, select]() -> std::optional<Value> {
      while (auto v = items()) {
        if (test(trans(*v)) == select) return v;
      }
      return std::nullopt;
    };
  });
}

Value do_unique(Evaluator& ev, const Value& value, Args& args) {
  auto p = bind("unique", args, {"case_sensitive", "attribute"});
  std::function<Value(const Value&)> key;
  if (p[1] && !p[1]->is_none()) {
    key = attrgetter(ev, *p[1], !arg_true(p[0]));
  } else {
    bool insensitive = !arg_true(p[0]);
    key = [insensitive](const Value& v) { return insensitive ? ignore_case(v) : v; };
  }
  return generator([value, key]() -> Pull {
    Pull items = pull_items(value);
    auto seen = std::make_shared<std::vector<Value>>();
    return [items, key, seen]() -> std::optional<Value> {
      while (auto v = items()) {
        Value k = key(*v);
        if (!hashable(k)) throw TemplateError("unhashable type: '" + type_name(k) + "'");
        if (std::none_of(seen->begin(), seen->end(), [&](const Value& s) { return equal(s, k); })) {
          seen->push_back(k);
          return v;
        }
      }
      return std::nullopt;
    };
  });
}

Value do_batch_or_slice(const Value& value, Args& args, bool is_slice) {
  auto p = bind(is_slice ? "slice" : "batch", args, {is_slice ? "slices" : "linecount", "fill_with"}, 1);
  int64_t n = int_arg(is_slice ? "slice" : "batch", *p[0]);
  std::optional<Value> fill = p[1] && !p[1]->is_none() ? p[1] : std::nullopt;
  return generator([value, n, fill, is_slice]() -> Pull {
    std::vector<Value> seq = iterate(value);
    auto groups = std::make_shared<std::vector<Value>>();
    if (is_slice) {
      if (n <= 0) throw TemplateError("ZeroDivisionError: integer division or modulo by zero");
      int64_t len = static_cast<int64_t>(seq.size());
      int64_t per = len / n, extra = len % n, offset = 0;
      for (int64_t k = 0; k < n; ++k) {
        int64_t start = offset + k * per;
        if (k < extra) ++offset;
        int64_t end = offset + (k + 1) * per;
        std::vector<Value> part(seq.begin() + start, seq.begin() + end);
        if (fill && k >= extra) part.push_back(*fill);
        groups->push_back(Value::list(std::move(part)));
      }
    } else {
      std::vector<Value> tmp;
      for (Value& v : seq) {
        if (static_cast<int64_t>(tmp.size()) == n) groups->push_back(Value::list(std::exchange(tmp, {})));
        tmp.push_back(std::move(v));
      }
      if (!tmp.empty()) {
        while (fill && static_cast<int64_t>(tmp.size()) < n) tmp.push_back(*fill);
        groups->push_back(Value::list(std::move(tmp)));
      }
    }
    auto i = std::make_shared<size_t>(0);
    return [groups, i]() -> std::optional<Value> {
      if (*i >= groups->size()) return std::nullopt;
      return (*groups)[(*i)++];
    };
  });
}

Value do_items(const Value& value) {
  return generator([value]() -> Pull {
    if (value.is_undefined()) return [] { return std::optional<Value>(); };
    if (value.kind() != Kind::Dict) throw TemplateError("Can only get item pairs from a mapping.");
    auto pairs = std::make_shared<std::vector<Value>>();
    for (const auto& [k, v] : value.dict().items) pairs->push_back(Value::list({k, v}, ListKind::Tuple));
    auto i = std::make_shared<size_t>(0);
    return [pairs, i]() -> std::optional<Value> {
      if (*i >= pairs->size()) return std::nullopt;
      return (*pairs)[(*i)++];
    };
  });
}

Value do_sum(Evaluator& ev, const Value& value, Args& args) {
  auto p = bind("sum", args, {"attribute", "start"});
  Value total = arg_or(p[1], Value::integer(0));
  std::function<Value(const Value&)> get;
  if (p[0] && !p[0]->is_none()) get = attrgetter(ev, *p[0], false);
  for (const Value& item : iterate(value)) total = binary_op(BinOp::Add, total, get ? get(item) : item);
  return total;
}

}  // namespace

bool is_known_filter(const std::string& name) { return kFilters.count(name) > 0; }
bool is_known_test(const std::string& name) { return kTests.count(name) > 0; }

Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, Args& args) {
  const std::string& f = name;
  if (kUnsupportedFilters.count(f)) throw TemplateError("filter '" + f + "' is not supported by Troupe's Jinja");
  auto none = [&] { bind(f, args, {}); };
  if (f == "trim") {
    auto p = bind(f, args, {"chars"});
    std::optional<std::u32string> chars;
    if (p[0] && !p[0]->is_none()) chars = decode(str_arg(f, *p[0]));
    return Value::string(encode(strip(decode(soft_str(input)), chars, true, true)));
  }
  if (f == "tojson") return do_tojson(input, args);
  if (f == "length" || f == "count") return none(), Value::integer(length(input));
  if (f == "upper" || f == "lower" || f == "capitalize") {
    none();
    std::u32string s = decode(soft_str(input));
    return Value::string(encode(f == "upper" ? upper(s) : f == "lower" ? lower(s) : capitalize(s)));
  }
  if (f == "title") return none(), do_title(input);
  if (f == "default" || f == "d") {
    auto p = bind(f, args, {"default_value", "boolean"});
    bool use_default = input.is_undefined() || (arg_true(p[1]) && !truthy(input));
    return use_default ? arg_or(p[0], Value::string("")) : input;
  }
  if (f == "first" || f == "last") return none(), do_first_last(input, f == "last");
  if (f == "join") return do_join(ev, input, args);
  if (f == "replace") {
    auto p = bind(f, args, {"old", "new", "count"}, 2);
    int64_t count = p[2] && !p[2]->is_none() ? int_arg(f, *p[2]) : -1;
    std::u32string s = decode(soft_str(input));
    return Value::string(encode(replace(s, decode(to_str(*p[0])), decode(to_str(*p[1])), count)));
  }
  if (f == "list") return none(), Value::list(iterate(input));
  if (f == "string") return none(), soft_value(input);
  if (f == "safe") return none(), Value::string(soft_str(input), true);
  if (f == "escape" || f == "e" || f == "forceescape") {
    none();
    if (f != "forceescape" && input.is_string() && input.markup()) return input;
    return html_escape(to_str(input));
  }
  if (f == "int") return do_int(input, args);
  if (f == "float") return do_float(input, args);
  if (f == "abs") {
    none();
    if (input.is_undefined()) fail_undefined(input);
    if (input.kind() == Kind::Float) return Value::real(std::fabs(input.as_float()));
    if (input.is_bool() || input.is_int()) return input.as_int() < 0 ? negate(input) : Value::integer(input.as_int());
    throw TemplateError("bad operand type for abs(): '" + type_name(input) + "'");
  }
  if (f == "round") return do_round(input, args);
  if (f == "items") return none(), do_items(input);
  if (f == "indent") return do_indent(input, args);
  if (f == "map") return do_map(ev, input, args);
  if (f == "select" || f == "reject") return do_select(ev, input, args, f == "select", false);
  if (f == "selectattr" || f == "rejectattr") return do_select(ev, input, args, f == "selectattr", true);
  if (f == "unique") return do_unique(ev, input, args);
  if (f == "reverse") return none(), do_reverse(input);
  if (f == "sort") return do_sort(ev, input, args);
  if (f == "dictsort") return do_dictsort(input, args);
  if (f == "min" || f == "max") return do_min_max(ev, input, args, f == "max");
  if (f == "sum") return do_sum(ev, input, args);
  if (f == "wordcount") return none(), do_wordcount(input);
  if (f == "center") {
    auto p = bind(f, args, {"width"});
    return Value::string(encode(center(decode(soft_str(input)), p[0] ? int_arg(f, *p[0]) : 80)));
  }
  if (f == "truncate") return do_truncate(input, args);
  if (f == "batch" || f == "slice") return do_batch_or_slice(input, args, f == "slice");
  if (f == "attr") {
    auto p = bind(f, args, {"name"}, 1);
    std::string attr = str_arg(f, *p[0]);
    if (!python_attribute(ev, input, attr)) {
      if (input.is_undefined()) fail_undefined(input);
      return Value::undefined("'" + object_type_repr(input) + "' has no attribute '" + attr + "'");
    }
    return ev.getattr(input, attr);
  }
  throw TemplateError("No filter named '" + f + "'.");
}

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
