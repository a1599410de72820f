// jinja2's filters on sequences (sort, dictsort, min/max, join, sum, first/last, reverse) and its generator filters
// (map, select/reject[attr], unique, items, batch, slice), which return lazy one-shot iterators here too, so that
// they print, count and test (always true) as they do in Python.
#include <algorithm>
#include <set>

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_eval.h"
#include "tokenizers/jinja_pystr.h"

namespace troupe::tokenizers::jinja::detail {
namespace {

using Pull = std::function<std::optional<Value>()>;

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

// jinja2's make_multi_attrgetter: the sort key is always a list (one entry per comma-separated attribute, or the item
// itself), so that keys equal by == never reach < (sorting undefineds or equal items does not fail).
std::function<Value(const Value&)> multi_attrgetter(Evaluator& ev, const Value& attribute, bool case_insensitive) {
  std::vector<std::function<Value(const Value&)>> getters;
  if (attribute.is_undefined() || attribute.is_none()) {
    getters.push_back([case_insensitive](const Value& v) { return case_insensitive ? ignore_case(v) : v; });
  } else if (!attribute.is_string()) {
    getters.push_back(attrgetter(ev, attribute, case_insensitive));
  } else {
    std::string s = attribute.str();
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      getters.push_back(attrgetter(ev, Value::string(s.substr(start, comma - start)), case_insensitive));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return [getters](const Value& v) {
    std::vector<Value> keys;
    for (const auto& g : getters) keys.push_back(g(v));
    return Value::list(std::move(keys));
  };
}

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
  bool insensitive = !arg_true(p[0]);
  std::function<Value(const Value&)> key = [insensitive](const Value& v) { return insensitive ? ignore_case(v) : v; };
  if (p[1] && !p[1]->is_none()) key = attrgetter(ev, *p[1], insensitive);  // make_attrgetter: one attribute
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

std::optional<Value> apply_sequence_filter(Evaluator& ev, const std::string& f, const Value& input, Args& args) {
  auto none = [&] { bind(f, args, {}); };
  if (f == "first" || f == "last") return none(), do_first_last(input, f == "last");
  if (f == "join") return do_join(ev, input, args);
  if (f == "list") return none(), Value::list(iterate(input));
  if (f == "items") return none(), do_items(input);
  if (f == "map") return do_map(ev, input, args);
  if (f == "select" || f == "reject") return do_select(ev, input, args, f == "select", false);
  if (f == "selectattr" || f == "rejectattr") return do_select(ev, input, args, f == "selectattr", true);
  if (f == "unique") return do_unique(ev, input, args);
  if (f == "reverse") return none(), do_reverse(input);
  if (f == "sort") return do_sort(ev, input, args);
  if (f == "dictsort") return do_dictsort(input, args);
  if (f == "min" || f == "max") return do_min_max(ev, input, args, f == "max");
  if (f == "sum") return do_sum(ev, input, args);
  if (f == "batch" || f == "slice") return do_batch_or_slice(input, args, f == "slice");
  return std::nullopt;
}

}  // namespace troupe::tokenizers::jinja::detail
