// The values of Troupe's Jinja engine (tokenizers/jinja.h) and their Python semantics: undefined (jinja2's default
// Undefined), none, bool, int (64-bit; overflow is an error, not a big int), float, str, list/tuple/range and the
// dict views, dict (insertion order), namespace, callables, one-shot iterators (what jinja2's generator filters
// return) and the `loop` object. str() and repr() print as Python does (True, None, 1e+16, ['a', "it's"]); tojson is
// json.dumps. Not a Python interpreter: there are no user classes, sets or big ints.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/errors.h"

namespace troupe::tokenizers::jinja {

// A template operation failed (Python would raise). Template::render adds the template's name and line.
class TemplateError : public DataError {
 public:
  using DataError::DataError;
};

// The template called raise_exception(message).
class RaisedError : public TemplateError {
 public:
  explicit RaisedError(const std::string& message) : RaisedError(message, message) {}
  RaisedError(const std::string& what, std::string raised) : TemplateError(what), message_(std::move(raised)) {}
  // The template's own message (what() adds where it was raised).
  const std::string& raised() const { return message_; }

 private:
  std::string message_;
};

class Value;
struct LoopState;  // jinja_eval.h

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function, Iterator, Loop };
// What a List value is in Python (they print and compare differently).
enum class ListKind { List, Tuple, Range, DictKeys, DictValues, DictItems };

// Arguments of a call: positional, then keyword (in call order).
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

// dict / namespace storage: insertion-ordered pairs (templates' dicts are small; lookups scan).
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  void set(const Value& key, Value value);
};

// A callable: a builtin function, a bound method or a macro.
struct Callable {
  std::string name;                 // for error messages
  std::optional<std::string> repr;  // what str() prints; nullopt where Python prints an address (an error here)
  std::function<Value(Args&)> call;
};

// A one-shot iterator (a Python generator or reverse iterator): `next` yields items until nullopt.
struct IteratorState {
  std::string type_name;  // e.g. "generator", for error messages
  std::function<std::optional<Value>()> next;
};

class Value {
 public:
  struct UndefinedV {
    std::string message;    // what an operation on it raises ("'foo' is undefined")
    bool security = false;  // a sandbox-refused attribute (SecurityError when used)
  };
  struct NoneV {};
  struct StrV {
    std::string s;        // UTF-8
    bool markup = false;  // a |safe (markupsafe.Markup) string
  };
  struct ListV {
    std::shared_ptr<const std::vector<Value>> items;
    ListKind kind = ListKind::List;
    int64_t range_start = 0, range_stop = 0, range_step = 1;  // for repr of a range
  };
  struct DictV {
    std::shared_ptr<const DictData> data;
  };
  struct NamespaceV {
    std::shared_ptr<DictData> data;  // mutable: {% set ns.x = ... %}
  };
  struct FunctionV {
    std::shared_ptr<const Callable> fn;
  };
  struct IteratorV {
    std::shared_ptr<IteratorState> it;
  };
  struct LoopV {
    std::shared_ptr<LoopState> loop;
  };

  Value() : v_(UndefinedV{}) {}
  static Value undefined(std::string message, bool security = false) {
    return Value(UndefinedV{std::move(message), security});
  }
  static Value none() { return Value(NoneV{}); }
  static Value boolean(bool b) { return Value(b); }
  static Value integer(int64_t i) { return Value(i); }
  static Value real(double f) { return Value(f); }
  static Value string(std::string s, bool markup = false) { return Value(StrV{std::move(s), markup}); }
  static Value list(std::vector<Value> items, ListKind kind = ListKind::List);
  static Value range(int64_t start, int64_t stop, int64_t step);
  static Value dict(DictData data);
  static Value make_namespace(DictData data);
  static Value function(std::string name, std::function<Value(Args&)> call, std::optional<std::string> repr = {});
  static Value iterator(std::string type_name, std::function<std::optional<Value>()> next);
  static Value loop(std::shared_ptr<LoopState> state);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_number() const { return kind() == Kind::Bool || kind() == Kind::Int || kind() == Kind::Float; }
  // Sequences Python iterates by index: list, tuple, range (not the dict views).
  bool is_list() const { return kind() == Kind::List; }

  const UndefinedV& undef() const { return std::get<UndefinedV>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;   // int or bool
  double as_float() const;  // float, int or bool
  const std::string& str() const { return std::get<StrV>(v_).s; }
  bool markup() const { return std::get<StrV>(v_).markup; }
  const ListV& list_v() const { return std::get<ListV>(v_); }
  const std::vector<Value>& items() const { return *std::get<ListV>(v_).items; }
  ListKind list_kind() const { return std::get<ListV>(v_).kind; }
  const DictData& dict() const { return *std::get<DictV>(v_).data; }
  DictData& ns() const { return *std::get<NamespaceV>(v_).data; }
  const Callable& fn() const { return *std::get<FunctionV>(v_).fn; }
  IteratorState& iter() const { return *std::get<IteratorV>(v_).it; }
  LoopState& loop_state() const { return *std::get<LoopV>(v_).loop; }
  // Identity for the `sameas` test and namespaces (Python `is`).
  const void* identity() const;

 private:
  using Variant = std::variant<UndefinedV, NoneV, bool, int64_t, double, StrV, ListV, DictV, NamespaceV, FunctionV,
                               IteratorV, LoopV>;
  template <typename T>
  explicit Value(T v) : v_(std::move(v)) {}
  Variant v_;
};

// Raises the undefined value's error (UndefinedError, or SecurityError for a refused attribute).
[[noreturn]] void fail_undefined(const Value& v);

// Python's type name ("str", "int", "list", "dict", "NoneType", ...), and jinja2's object_type_repr ("dict object").
std::string type_name(const Value& v);
std::string object_type_repr(const Value& v);

// While one lives on this thread, undefined values behave as jinja2's StrictUndefined (an error when printed,
// tested for truth, iterated, measured or compared) instead of its default Undefined.
class StrictUndefinedScope {
 public:
  explicit StrictUndefinedScope(bool strict);
  ~StrictUndefinedScope();
  StrictUndefinedScope(const StrictUndefinedScope&) = delete;
  StrictUndefinedScope& operator=(const StrictUndefinedScope&) = delete;

 private:
  bool previous_;
};

bool truthy(const Value& v);                 // bool(v)
bool equal(const Value& a, const Value& b);  // a == b
bool less(const Value& a, const Value& b);   // a < b (TemplateError where Python raises TypeError)
bool hashable(const Value& v);
std::string to_str(const Value& v);   // str(v)
std::string to_repr(const Value& v);  // repr(v)
std::string format_float(double f);   // repr(float)
// 64-bit integer arithmetic that throws TemplateError on overflow (Python's ints would grow instead).
int64_t add_int(int64_t a, int64_t b);
int64_t sub_int(int64_t a, int64_t b);
int64_t mul_int(int64_t a, int64_t b);

// The items a for loop / list() sees: list items, dict keys, str characters, an iterator's remaining items (which
// consumes it), nothing for undefined. Other values throw ("'int' object is not iterable").
std::vector<Value> iterate(const Value& v);
bool iterable(const Value& v);
// len(v), or TemplateError.
int64_t length(const Value& v);

// JSON input (ordered, so dict order follows the document) to values; tojson (json.dumps) of a value.
Value from_json(const nlohmann::ordered_json& j);
struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& options);

}  // namespace troupe::tokenizers::jinja
