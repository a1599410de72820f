// Typed configs over config trees: binding a ConfigNode into a struct, validating it,
// and emitting it back as YAML with the origin of each value. Header-only templates.
//
// A config struct lists its fields once, in a `visit` member, with a one-line doc each:
//
//   struct RuntimeConfig {
//     int threads = 0;  // ATen + OpenBLAS threads, 0 = all cores
//     template <class V> void visit(V& v) { v.field("threads", threads, "ATen + OpenBLAS threads, 0 = all cores"); }
//     void validate(ConfigValidator& v) const { v.require(threads >= 0, "threads", threads, "an integer >= 0"); }
//   };
//
// Binding rejects unknown keys (suggesting the nearest valid one) and wrong types, naming
// the file:line:col of the offending value and its dotted key path.
//
// Choices are enums bound by name: declare the names next to the enum with a `config_names` function that
// argument-dependent lookup finds, and the binder accepts exactly those names (anything else is an error naming
// file:line:col and listing the choices); emitting writes the name back.
//
//   enum class Schedule { Cosine, Linear };
//   constexpr auto config_names(Schedule) { return std::array{std::pair{Schedule::Cosine, "cosine"},
//                                                             std::pair{Schedule::Linear, "linear"}}; }
//
// Paths are declared with `v.path(key, value, doc)` instead of `field`: a relative path written in a config file
// resolves against that file's directory (as `base:` does), so a config works from any working directory; a
// path given as a command-line override resolves against the working directory (so the resolved config that a run
// saves, and its worker processes read from the run directory, holds it absolute), and one starting with "${"
// (a placeholder such as ${run}) is left for its consumer to expand.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/config_tree.h"
#include "core/errors.h"

namespace troupe::core {

// Origin of every bound leaf value, by dotted path ("runtime.threads").
using OriginMap = std::map<std::string, Origin>;

// The config name of an enum value (its `config_names` entry).
template <class E>
std::string enum_name(E value) {
  for (const auto& [v, name] : config_names(E{}))
    if (v == value) return name;
  return "?";
}

// The value named `name`, or nullopt.
template <class E>
std::optional<E> parse_enum(std::string_view name) {
  for (const auto& [v, n] : config_names(E{}))
    if (name == n) return v;
  return std::nullopt;
}

// "a, b or c": the accepted names, for error messages and docs.
template <class E>
std::string enum_choices() {
  const auto names = config_names(E{});
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(names[i].second);
  return out;
}

// A path value written in `file` resolved against the file's directory (absolute, lexically normal); empty paths,
// absolute paths and placeholders ("${run}/...") are returned unchanged.
std::string resolve_config_path(const std::string& value, const std::string& file);
// A path from a command-line override: relative to the working directory, made absolute.
std::string resolve_override_path(const std::string& value);

namespace detail {

inline std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

// Any visitor: lets us detect a `visit` member template.
struct ProbeVisitor {
  template <class T>
  void field(const char*, T&, const char*) {}
  void path(const char*, std::string&, const char*) {}
};
template <class T, class = void>
struct is_config_struct : std::false_type {};
template <class T>
struct is_config_struct<T, std::void_t<decltype(std::declval<T&>().visit(std::declval<ProbeVisitor&>()))>>
    : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T>
struct is_string_map<std::map<std::string, T>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

[[noreturn]] inline void type_error(const ConfigNode& n, const std::string& path, const std::string& expected) {
  std::string got = n.is_scalar() ? "'" + n.text() + "'" : n.type_name();
  throw ConfigError(n.origin().describe() + ": " + path + ": expected " + expected + ", got " + got);
}

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <class T>
std::string type_description() {
  if constexpr (std::is_same_v<T, bool>)
    return "a boolean (true/false)";
  else if constexpr (std::is_integral_v<T>)
    return "an integer in [" + std::to_string(std::numeric_limits<T>::lowest()) + ", " +
           std::to_string(std::numeric_limits<T>::max()) + "]";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else if constexpr (std::is_enum_v<T>)
    return enum_choices<T>();
  else if constexpr (is_vector<T>::value)
    return "a list";
  else
    return "a mapping";
}

template <class T>
void read_value(const ConfigNode& n, const std::string& path, T& out, OriginMap& origins);
template <class T>
void read_value(const ConfigNode& n, const std::string& path, T& out, OriginMap& origins, bool absent);

template <class T>
void read_scalar(const ConfigNode& n, const std::string& path, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (n.is_null())
      out.clear();
    else if (n.is_scalar())
      out = n.text();
    else
      type_error(n, path, "a string");
  } else if constexpr (std::is_enum_v<T>) {
    const auto v = n.is_scalar() ? parse_enum<T>(n.text()) : std::nullopt;
    if (!v) type_error(n, path, enum_choices<T>());
    out = *v;
  } else {
    if (!n.is_scalar()) type_error(n, path, type_description<T>());
    const std::string& s = n.text();
    if constexpr (std::is_same_v<T, bool>) {
      const std::string l = lower(s);
      if (l == "true" || l == "yes" || l == "on")
        out = true;
      else if (l == "false" || l == "no" || l == "off")
        out = false;
      else
        type_error(n, path, type_description<T>());
    } else if constexpr (std::is_integral_v<T>) {
      T v{};
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) type_error(n, path, type_description<T>());
      out = v;
    } else if constexpr (std::is_floating_point_v<T>) {
      const std::string l = lower(s);
      if (l == ".inf" || l == "inf") {
        out = std::numeric_limits<T>::infinity();
        return;
      }
      if (l == "-.inf" || l == "-inf") {
        out = -std::numeric_limits<T>::infinity();
        return;
      }
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || std::isnan(v))
        type_error(n, path, type_description<T>());
      out = static_cast<T>(v);
    } else {
      static_assert(sizeof(T) == 0, "unsupported config field type");
    }
  }
}

}  // namespace detail

// Reads a ConfigNode (a mapping, or null for "all defaults") into a config struct.
class ConfigBinder {
 public:
  ConfigBinder(const ConfigNode* node, std::string prefix, OriginMap& origins)
      : node_(node), prefix_(std::move(prefix)), origins_(origins) {
    if (node_ && !node_->is_map() && !node_->is_null())
      detail::type_error(*node_, prefix_.empty() ? "(top level)" : prefix_, "a mapping of keys");
  }

  template <class T>
  void field(const char* key, T& value, const char* /*doc*/) {
    known_.emplace_back(key);
    const std::string path = detail::join_path(prefix_, key);
    const ConfigNode* child = node_ ? node_->find(key) : nullptr;
    if (child)
      detail::read_value(*child, path, value, origins_);
    else
      detail::read_value(ConfigNode{}, path, value, origins_, /*absent=*/true);
  }

  // A path field: bound like a string, then resolved against the directory of the file that wrote it.
  void path(const char* key, std::string& value, const char* doc) {
    field(key, value, doc);
    const auto it = origins_.find(detail::join_path(prefix_, key));
    if (it == origins_.end()) return;
    if (it->second.kind == Origin::Kind::File) value = resolve_config_path(value, it->second.file);
    if (it->second.kind == Origin::Kind::Override) value = resolve_override_path(value);
  }

  // Throws ConfigError for any key in the node that no field claimed.
  void reject_unknown_keys() const {
    if (!node_ || !node_->is_map()) return;
    for (const auto& entry : node_->entries()) {
      const std::string& key = entry.first;
      bool known = false;
      for (const auto& k : known_) known |= k == key;
      if (known) continue;
      std::string msg = node_->key_origin(key).describe() + ": unknown key '" + detail::join_path(prefix_, key) + "'";
      const std::string guess = nearest_key(key, known_);
      if (!guess.empty()) msg += " (did you mean '" + detail::join_path(prefix_, guess) + "'?)";
      msg += "; valid keys" + std::string(prefix_.empty() ? "" : " in '" + prefix_ + "'") + ": ";
      for (size_t i = 0; i < known_.size(); ++i) msg += (i ? ", " : "") + known_[i];
      throw ConfigError(msg);
    }
  }

 private:
  const ConfigNode* node_;
  std::string prefix_;
  OriginMap& origins_;
  std::vector<std::string> known_;
};

namespace detail {

template <class T>
void read_value(const ConfigNode& n, const std::string& path, T& out, OriginMap& origins, bool absent) {
  if (absent) {
    // Keep the default; nested structs still record a default origin per leaf.
    if constexpr (is_config_struct<T>::value) {
      ConfigBinder sub(nullptr, path, origins);
      out.visit(sub);
    } else {
      origins.emplace(path, Origin{});
    }
    return;
  }
  read_value(n, path, out, origins);
}

template <class T>
void read_value(const ConfigNode& n, const std::string& path, T& out, OriginMap& origins) {
  if constexpr (is_config_struct<T>::value) {
    ConfigBinder sub(&n, path, origins);
    out.visit(sub);
    sub.reject_unknown_keys();
    return;
  } else if constexpr (is_optional<T>::value) {
    if (n.is_null())
      out.reset();
    else {
      typename T::value_type v{};
      read_value(n, path, v, origins);
      out = std::move(v);
    }
  } else if constexpr (is_vector<T>::value) {
    if (!n.is_sequence()) type_error(n, path, "a list");
    T result;
    for (size_t i = 0; i < n.items().size(); ++i) {
      typename T::value_type v{};
      OriginMap scratch;
      read_value(n.items()[i], path + "[" + std::to_string(i) + "]", v, scratch);
      result.push_back(std::move(v));
    }
    out = std::move(result);
  } else if constexpr (is_string_map<T>::value) {
    if (n.is_null()) {
      out.clear();
    } else {
      if (!n.is_map()) type_error(n, path, "a mapping");
      T result;
      for (const auto& [k, child] : n.entries()) {
        OriginMap scratch;
        read_value(child, path + "." + k, result[k], scratch);
      }
      out = std::move(result);
    }
  } else {
    read_scalar(n, path, out);
  }
  origins[path] = n.origin();
}

// YAML text for one scalar, quoted only where YAML needs it.
template <class T>
std::string format_scalar(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_enum_v<T>)
    return enum_name(v);
  else if constexpr (std::is_integral_v<T>)
    return std::to_string(v);
  else if constexpr (std::is_floating_point_v<T>) {
    if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
    std::ostringstream ss;
    ss.precision(std::numeric_limits<T>::max_digits10);
    ss << v;
    // Shortest text that reads back to the same value.
    for (int p = 1; p <= std::numeric_limits<T>::max_digits10; ++p) {
      std::ostringstream t;
      t.precision(p);
      t << v;
      if (static_cast<T>(std::strtod(t.str().c_str(), nullptr)) == v) return t.str();
    }
    return ss.str();
  } else {
    YAML::Emitter e;
    e << YAML::DoubleQuoted << v;
    std::string quoted = e.c_str();
    YAML::Emitter plain;
    plain << v;
    std::string p = plain.c_str();
    // A plain string that YAML would read as something else (number, bool, null) gets quotes.
    const std::string l = lower(p);
    char* end = nullptr;
    std::strtod(p.c_str(), &end);
    const bool numeric = !p.empty() && end == p.c_str() + p.size();
    bool ambiguous = p.empty() || numeric || l == "null" || l == "~" || l == "true" || l == "false" || l == "yes" ||
                     l == "no" || l == "on" || l == "off" || l == ".inf" || l == "-.inf" || l == ".nan";
    return ambiguous ? quoted : p;
  }
}

}  // namespace detail

// Checks ranges and relations after binding; errors name the origin of the offending key.
class ConfigValidator {
 public:
  explicit ConfigValidator(const OriginMap& origins, std::string prefix = "")
      : origins_(origins), prefix_(std::move(prefix)) {}

  // Throws ConfigError "<origin>: <path> = <value>: expected <expected>" unless `ok`.
  template <class T>
  void require(bool ok, const std::string& key, const T& value, const std::string& expected) const {
    if (ok) return;
    const std::string path = detail::join_path(prefix_, key);
    auto it = origins_.find(path);
    const std::string where = it == origins_.end() ? std::string("config") : it->second.describe();
    std::string shown;
    if constexpr (detail::is_vector<T>::value)
      shown = "[" + std::to_string(value.size()) + " items]";
    else
      shown = detail::format_scalar(value);
    throw ConfigError(where + ": " + path + " = " + shown + ": expected " + expected);
  }

  // Validates a nested section under `key`.
  template <class S>
  void nested(const std::string& key, const S& section) const {
    ConfigValidator sub(origins_, detail::join_path(prefix_, key));
    section.validate(sub);
  }

 private:
  const OriginMap& origins_;
  std::string prefix_;
};

// Writes a config struct as YAML, optionally with "# origin" (and doc) comments per value.
class ConfigEmitter {
 public:
  struct Options {
    bool origins = false;  // append "# <origin>" to each value
    bool docs = false;     // append the field's doc line
  };
  ConfigEmitter(const OriginMap* origins, Options options, std::string prefix = "", int indent = 0)
      : origins_(origins), options_(options), prefix_(std::move(prefix)), indent_(indent) {}

  template <class T>
  void field(const char* key, const T& value, const char* doc) {
    const std::string path = detail::join_path(prefix_, key);
    const std::string pad(indent_, ' ');
    if constexpr (detail::is_config_struct<T>::value) {
      lines_.push_back({pad + key + ":", options_.docs ? doc : ""});
      ConfigEmitter sub(origins_, options_, path, indent_ + 2);
      const_cast<T&>(value).visit(sub);
      for (auto& l : sub.lines_) lines_.push_back(std::move(l));
    } else {
      lines_.push_back({pad + key + ": " + flow(value), comment_for(path, doc)});
    }
  }
  void path(const char* key, const std::string& value, const char* doc) { field(key, value, doc); }

  // The YAML text; comments aligned in one column.
  std::string str() const {
    size_t width = 0;
    for (const auto& l : lines_)
      if (!l.comment.empty()) width = std::max(width, l.text.size());
    width = std::min<size_t>(width + 2, 56);
    std::string out;
    for (const auto& l : lines_) {
      out += l.text;
      if (!l.comment.empty())
        out += std::string(l.text.size() < width ? width - l.text.size() : 1, ' ') + "# " + l.comment;
      out += "\n";
    }
    return out;
  }

 private:
  struct Line {
    std::string text;
    std::string comment;
  };

  // A struct inside a list (e.g. a pipeline's stages) as one flow mapping: {name: x, command: [a, b]}.
  struct FlowFields {
    std::string text;
    template <class T>
    void field(const char* key, const T& value, const char*) {
      text += (text.empty() ? "" : ", ") + std::string(key) + ": " + flow(value);
    }
    void path(const char* key, const std::string& value, const char* doc) { field(key, value, doc); }
  };

  template <class T>
  static std::string flow(const T& v) {
    if constexpr (detail::is_optional<T>::value)
      return v ? flow(*v) : "null";
    else if constexpr (detail::is_config_struct<T>::value) {
      FlowFields f;
      const_cast<T&>(v).visit(f);
      return "{" + f.text + "}";
    } else if constexpr (detail::is_vector<T>::value) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + flow(v[i]);
      return s + "]";
    } else if constexpr (detail::is_string_map<T>::value) {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, x] : v) s += (first ? "" : ", ") + detail::format_scalar(k) + ": " + flow(x), first = false;
      return s + "}";
    } else {
      return detail::format_scalar(v);
    }
  }

  std::string comment_for(const std::string& path, const char* doc) const {
    std::string c;
    if (options_.origins && origins_) {
      auto it = origins_->find(path);
      c = it == origins_->end() ? "default" : it->second.describe();
    }
    if (options_.docs && doc && *doc) c += (c.empty() ? "" : " | ") + std::string(doc);
    return c;
  }

  const OriginMap* origins_;
  Options options_;
  std::string prefix_;
  int indent_;
  std::vector<Line> lines_;
};

// A config bound from files and overrides, with where each value came from.
template <class Cfg>
struct BoundConfig {
  Cfg value;
  OriginMap origins;
};

// Binds a whole tree into Cfg, rejects unknown keys, then runs Cfg::validate.
template <class Cfg>
BoundConfig<Cfg> bind_config(const ConfigNode& tree) {
  BoundConfig<Cfg> out;
  ConfigBinder binder(&tree, "", out.origins);
  out.value.visit(binder);
  binder.reject_unknown_keys();
  ConfigValidator validator(out.origins);
  out.value.validate(validator);
  return out;
}

// Resolved YAML for a config struct; with origins=true each value says where it came from.
template <class Cfg>
std::string emit_config(const Cfg& cfg, const OriginMap* origins, ConfigEmitter::Options options) {
  ConfigEmitter emitter(origins, options);
  const_cast<Cfg&>(cfg).visit(emitter);
  return emitter.str();
}

}  // namespace troupe::core
