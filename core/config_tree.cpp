// Parsing, base-file chaining, merging and overrides for config trees (core/config_tree.h).
#include "core/config_tree.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace troupe::core {
namespace fs = std::filesystem;

std::string Origin::describe() const {
  switch (kind) {
    case Kind::Default: return "default";
    case Kind::Override: return "override '" + file + "'";
    case Kind::File:
      if (line > 0) return file + ":" + std::to_string(line) + ":" + std::to_string(column);
      return file;
  }
  return "?";
}

Origin Origin::in_file(const std::string& file, int line, int column) { return Origin{Kind::File, file, line, column}; }

Origin Origin::from_override(const std::string& text) { return Origin{Kind::Override, text, 0, 0}; }

ConfigNode ConfigNode::scalar(std::string text, Origin origin) {
  ConfigNode n;
  n.type_ = Type::Scalar;
  n.text_ = std::move(text);
  n.origin_ = std::move(origin);
  return n;
}

ConfigNode ConfigNode::map(Origin origin) {
  ConfigNode n;
  n.type_ = Type::Map;
  n.origin_ = std::move(origin);
  return n;
}

std::string ConfigNode::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Scalar: return "a scalar";
    case Type::Sequence: return "a list";
    case Type::Map: return "a mapping";
  }
  return "?";
}

const ConfigNode* ConfigNode::find(const std::string& key) const {
  if (type_ != Type::Map) return nullptr;
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

ConfigNode& ConfigNode::child(const std::string& key, const Origin* key_origin) {
  if (type_ == Type::Null) type_ = Type::Map;
  if (type_ != Type::Map)
    throw ConfigError(origin_.describe() + ": cannot set key '" + key + "' inside " + type_name());
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first != key) continue;
    if (key_origin) key_origins_[i] = *key_origin;
    return entries_[i].second;
  }
  entries_.emplace_back(key, ConfigNode{});
  key_origins_.push_back(key_origin ? *key_origin : Origin{});
  return entries_.back().second;
}

Origin ConfigNode::key_origin(const std::string& key) const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first != key) continue;
    if (key_origins_[i].kind != Origin::Kind::Default) return key_origins_[i];
    return entries_[i].second.origin();
  }
  return origin_;
}

void ConfigNode::erase(const std::string& key) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first != key) continue;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
    key_origins_.erase(key_origins_.begin() + static_cast<std::ptrdiff_t>(i));
    return;
  }
}

void ConfigNode::make_sequence(Origin origin) {
  type_ = Type::Sequence;
  items_.clear();
  entries_.clear();
  text_.clear();
  origin_ = std::move(origin);
}

namespace {

Origin origin_of(const YAML::Node& node, const std::string& source) {
  const YAML::Mark m = node.Mark();
  if (m.is_null()) return Origin::in_file(source, 0, 0);
  return Origin::in_file(source, m.line + 1, m.column + 1);
}

// What one YAML document may expand to. YAML aliases share nodes, so a few lines of nested aliases (the "billion
// laughs" bomb) stand for an exponential tree; expanding it would exhaust memory. Real configs have a few hundred
// values and a nesting depth below 10.
constexpr int64_t kMaxConfigValues = 100000;
constexpr int kMaxConfigDepth = 64;

struct ExpansionBudget {
  std::string source;
  int64_t values = 0;
  void count(const YAML::Node& node, int depth) {
    if (++values > kMaxConfigValues) {
      throw ConfigError(origin_of(node, source).describe() + ": the YAML expands to more than " +
                        std::to_string(kMaxConfigValues) +
                        " values (nested aliases, a \"billion laughs\" document?); a config is far smaller");
    }
    if (depth > kMaxConfigDepth) {
      throw ConfigError(origin_of(node, source).describe() + ": the YAML nests deeper than " +
                        std::to_string(kMaxConfigDepth) + " levels");
    }
  }
};

ConfigNode convert(const YAML::Node& node, const std::string& source, const Origin& override_origin,
                   ExpansionBudget& budget, int depth = 0) {
  budget.count(node, depth);
  const bool from_override = override_origin.kind == Origin::Kind::Override;
  const Origin here = from_override ? override_origin : origin_of(node, source);
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: {
      ConfigNode n;
      n.set_origin(here);
      return n;
    }
    case YAML::NodeType::Scalar: return ConfigNode::scalar(node.Scalar(), here);
    case YAML::NodeType::Sequence: {
      ConfigNode n;
      n.make_sequence(here);
      for (const auto& item : node) n.push_back(convert(item, source, override_origin, budget, depth + 1));
      return n;
    }
    case YAML::NodeType::Map: {
      ConfigNode n = ConfigNode::map(here);
      for (const auto& kv : node) {
        if (!kv.first.IsScalar())
          throw ConfigError(origin_of(kv.first, source).describe() + ": config keys must be plain names");
        const std::string key = kv.first.Scalar();
        if (n.find(key)) throw ConfigError(origin_of(kv.first, source).describe() + ": duplicate key '" + key + "'");
        ConfigNode value = convert(kv.second, source, override_origin, budget, depth + 1);
        const Origin key_origin = from_override ? override_origin : origin_of(kv.first, source);
        if (value.is_null()) value.set_origin(key_origin);
        n.child(key, &key_origin) = std::move(value);
      }
      return n;
    }
  }
  return ConfigNode{};
}

YAML::Node parse_yaml(const std::string& text, const std::string& source_name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": malformed YAML: " + e.msg);
  }
}

std::string read_text(const fs::path& file, const std::string& context) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::string why = fs::exists(file) ? "cannot be read" : "no such config file";
    throw ConfigError(file.string() + ": " + why + context);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `named_by` is the origin of the `base:` entry that named `file` (nullptr for the top file).
ConfigNode load_chain(const fs::path& file, std::vector<fs::path>& stack, const Origin* named_by) {
  const fs::path canonical = fs::weakly_canonical(file);
  if (std::find(stack.begin(), stack.end(), canonical) != stack.end()) {
    std::string chain;
    for (const auto& p : stack) chain += p.string() + " -> ";
    throw ConfigError(named_by->describe() + ": base: file cycle: " + chain + canonical.string());
  }
  const std::string context = named_by ? " (named by base: at " + named_by->describe() + ")" : "";
  ConfigNode node = parse_config_yaml(read_text(file, context), file.string());
  if (node.is_null()) node = ConfigNode::map(Origin::in_file(file.string(), 1, 1));
  if (!node.is_map())
    throw ConfigError(node.origin().describe() + ": a config file must be a mapping of keys, got " + node.type_name());
  const ConfigNode* base = node.find("base");
  if (!base) return node;

  std::vector<const ConfigNode*> bases;
  if (base->is_scalar())
    bases.push_back(base);
  else if (base->is_sequence())
    for (const auto& b : base->items()) bases.push_back(&b);
  else
    throw ConfigError(base->origin().describe() + ": base: expected a file path or a list of paths, got " +
                      base->type_name());

  stack.push_back(canonical);
  ConfigNode merged = ConfigNode::map(node.origin());
  for (const ConfigNode* b : bases) {
    if (!b->is_scalar())
      throw ConfigError(b->origin().describe() + ": base: expected a file path, got " + b->type_name());
    fs::path base_path = fs::path(b->text());
    if (base_path.is_relative()) base_path = file.parent_path() / base_path;
    ConfigNode loaded = load_chain(base_path, stack, &b->origin());
    loaded.erase("base");
    merge_config(merged, loaded);
  }
  stack.pop_back();
  ConfigNode own = node;
  own.erase("base");
  merge_config(merged, own);
  return merged;
}

}  // namespace

ConfigNode parse_config_yaml(const std::string& text, const std::string& source_name) {
  ExpansionBudget budget{source_name};
  return convert(parse_yaml(text, source_name), source_name, Origin{}, budget);
}

ConfigNode load_config_file(const fs::path& file) {
  std::vector<fs::path> stack;
  return load_chain(file, stack, nullptr);
}

ConfigNode load_config(const fs::path& file, const std::vector<std::string>& overrides) {
  ConfigNode tree = load_config_file(file);
  for (const auto& o : overrides) apply_override(tree, o);
  return tree;
}

void merge_config(ConfigNode& base, const ConfigNode& overlay) {
  if (base.is_map() && overlay.is_map()) {
    for (const auto& [key, value] : overlay.entries()) {
      const Origin key_origin = overlay.key_origin(key);
      merge_config(base.child(key, &key_origin), value);
    }
    return;
  }
  base = overlay;
}

void apply_override(ConfigNode& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError("override '" + assignment + "': expected key.path=value");
  const std::string path = assignment.substr(0, eq);
  const std::string value_text = assignment.substr(eq + 1);
  const Origin origin = Origin::from_override(assignment);

  ConfigNode* node = &root;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.empty()) throw ConfigError("override '" + assignment + "': empty key in '" + path + "'");
    node = &node->child(part, &origin);
  }
  ExpansionBudget budget{"override '" + assignment + "'"};
  ConfigNode value = value_text.empty()
                         ? ConfigNode::scalar("", origin)
                         : convert(parse_yaml(value_text, "override '" + assignment + "'"), "", origin, budget);
  merge_config(*node, value);
  if (!node->is_map()) node->set_origin(origin);
}

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  int best_distance = 1 << 30;
  for (const auto& c : candidates) {
    int d = edit_distance(key, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  const int limit = std::max<int>(2, static_cast<int>(key.size()) / 3);
  return best_distance <= limit ? best : "";
}

}  // namespace troupe::core
