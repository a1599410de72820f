// A YAML config as a tree that remembers where every value came from (file:line:col,
// a command-line override, or a default). Not typed: see core/config_binder.h for that.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace troupe::core {

// Where a config value came from.
struct Origin {
  enum class Kind { Default, File, Override };
  Kind kind = Kind::Default;
  std::string file;  // File: the YAML file; Override: the override text ("a.b=3")
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown

  // "path/to/file.yaml:3:5", "override 'a.b=3'", or "default".
  std::string describe() const;
  static Origin in_file(const std::string& file, int line, int column);
  static Origin from_override(const std::string& text);
};

// One node of a config tree: null, scalar (kept as text), sequence, or ordered map.
class ConfigNode {
 public:
  enum class Type { Null, Scalar, Sequence, Map };

  ConfigNode() = default;
  static ConfigNode scalar(std::string text, Origin origin);
  static ConfigNode map(Origin origin);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_scalar() const { return type_ == Type::Scalar; }
  bool is_sequence() const { return type_ == Type::Sequence; }
  bool is_map() const { return type_ == Type::Map; }
  const std::string& text() const { return text_; }  // scalar text
  const Origin& origin() const { return origin_; }
  void set_origin(const Origin& o) { origin_ = o; }
  // "null", "a scalar", "a list", "a mapping": for error messages.
  std::string type_name() const;

  const std::vector<ConfigNode>& items() const { return items_; }
  std::vector<ConfigNode>& items() { return items_; }
  const std::vector<std::pair<std::string, ConfigNode>>& entries() const { return entries_; }

  // Map access: nullptr when absent (or when this is not a map).
  const ConfigNode* find(const std::string& key) const;
  // Map access that inserts a null child (turning a null node into a map). `key_origin`
  // records where the key itself was written (for "unknown key" errors).
  ConfigNode& child(const std::string& key, const Origin* key_origin = nullptr);
  // Where `key` was written; the value's origin when unknown.
  Origin key_origin(const std::string& key) const;
  void erase(const std::string& key);

  void make_sequence(Origin origin);
  void push_back(ConfigNode node) { items_.push_back(std::move(node)); }

 private:
  Type type_ = Type::Null;
  std::string text_;
  Origin origin_;
  std::vector<ConfigNode> items_;
  std::vector<std::pair<std::string, ConfigNode>> entries_;
  std::vector<Origin> key_origins_;  // parallel to entries_
};

// Parses YAML text; `source_name` is used in origins and error messages.
// Throws ConfigError "<source>:<line>:<col>: malformed YAML: ..." on syntax errors.
ConfigNode parse_config_yaml(const std::string& text, const std::string& source_name);

// Loads a YAML file and the chain of `base:` files it extends (a path or a list of paths,
// relative to the file naming them). Later files override earlier ones; mappings merge
// key by key, lists and scalars replace. Throws ConfigError on a missing file or a cycle.
ConfigNode load_config_file(const std::filesystem::path& file);

// Merges `overlay` into `base` (mappings recursively, everything else replaced).
void merge_config(ConfigNode& base, const ConfigNode& overlay);

// Applies one command-line override "a.b.c=value". The value is parsed as YAML flow
// ("3", "1e-4", "true", "[1, 2]", "hello"). Throws ConfigError for text without '=' or
// an empty key.
void apply_override(ConfigNode& root, const std::string& assignment);

// Loads `file` (with its base chain) and applies each override in order.
ConfigNode load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

// Levenshtein edit distance, for "did you mean" suggestions.
int edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `key`, or "" if none is plausibly a typo of it.
std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace troupe::core
