// jinja2's filters (jinja2/filters.py, with transformers' tojson) on strings and numbers, and the dispatch of all of
// them (the ones on sequences are in jinja_sequence_filters.cpp; the tests in jinja_tests.cpp).
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

const std::set<std::string> kUnsupportedFilters = {"filesizeformat", "groupby", "pprint",   "random", "striptags",
                                                   "urlencode",      "urlize",  "wordwrap", "xmlattr"};
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
std::string soft_str(const Value& v) { return v.is_string() ? v.str() : to_str(v); }
Value soft_value(const Value& v) { return v.is_string() ? v : Value::string(to_str(v)); }

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
    if (!std::isfinite(f)) return fallback;  // int(inf) and int(nan) fail: the default
    if (std::fabs(f) >= 9.2e18)
      throw TemplateError("int of " + format_float(f) + " exceeds 64 bits (Troupe's Jinja integers are 64-bit)");
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
  if (res.ec == std::errc::result_out_of_range) {
    throw TemplateError("int of " + value.str() + " exceeds 64 bits (Troupe's Jinja integers are 64-bit)");
  }
  // "42.23"|int is 42: jinja2 retries through float().
  double f = 0;
  auto fres = std::from_chars(s.data() + (s[0] == '+'), s.data() + s.size(), f);
  if (!s.empty() && fres.ec == std::errc() && fres.ptr == s.data() + s.size() && std::isfinite(f)) {
    if (std::fabs(f) >= 9.2e18) {
      throw TemplateError("int of " + value.str() + " exceeds 64 bits (Troupe's Jinja integers are 64-bit)");
    }
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
  if (value.is_undefined()) fail_undefined(value);  // jinja2 appends "\n" to the value itself: only str works
  if (!value.is_string()) {
    throw TemplateError("unsupported operand type(s) for +=: '" + type_name(value) + "' and 'str'");
  }
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
  if (!value.is_string()) {
    // jinja2 takes len() of the value as it is: undefined and short containers come back unchanged; the rest fail.
    if (value.is_undefined() || value.is_list() || value.kind() == Kind::Dict) {
      if (jinja::length(value) <= length + leeway) return value;
    }
    throw TemplateError("truncate needs a string, not '" + type_name(value) + "'");
  }
  std::u32string s = decode(value.str());
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

}  // namespace

bool is_known_filter(const std::string& name) { return kFilters.count(name) > 0; }

Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, Args& args) {
  const std::string& f = name;
  if (kUnsupportedFilters.count(f)) throw TemplateError("filter '" + f + "' is not supported by Troupe's Jinja");
  auto none = [&] { bind(f, args, {}); };
  if (f == "format") {
    // jinja2's do_format: soft_str(value) % (kwargs or args).
    if (!args.pos.empty() && !args.kw.empty()) {
      throw TemplateError("can't handle positional and keyword arguments at the same time");
    }
    Value fmt_args;
    if (!args.kw.empty()) {
      DictData d;
      for (const auto& [k, v] : args.kw) d.set(Value::string(k), v);
      fmt_args = Value::dict(std::move(d));
    } else {
      fmt_args = Value::list(args.pos, ListKind::Tuple);
    }
    if (input.is_string() && input.markup())
      throw TemplateError("'format' on a |safe (Markup) string is not supported");
    return Value::string(printf_format(soft_str(input), fmt_args));
  }
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
  if (f == "replace") {
    auto p = bind(f, args, {"old", "new", "count"}, 2);
    int64_t count = p[2] && !p[2]->is_none() ? int_arg(f, *p[2]) : -1;
    std::u32string s = decode(soft_str(input));
    return Value::string(encode(replace(s, decode(to_str(*p[0])), decode(to_str(*p[1])), count)));
  }
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
  if (f == "indent") return do_indent(input, args);
  if (f == "wordcount") return none(), do_wordcount(input);
  if (f == "center") {
    auto p = bind(f, args, {"width"});
    return Value::string(encode(center(decode(soft_str(input)), p[0] ? int_arg(f, *p[0]) : 80)));
  }
  if (f == "truncate") return do_truncate(input, args);
  if (f == "attr") {
    auto p = bind(f, args, {"name"}, 1);
    std::string attr = str_arg(f, *p[0]);
    if (!python_attribute(ev, input, attr)) {
      if (input.is_undefined()) fail_undefined(input);
      return Value::undefined("'" + object_type_repr(input) + "' has no attribute '" + attr + "'");
    }
    return ev.getattr(input, attr);
  }
  if (auto v = apply_sequence_filter(ev, f, input, args)) return *v;
  throw TemplateError("No filter named '" + f + "'.");
}

}  // namespace troupe::tokenizers::jinja::detail
