// Implementation of cluster/sweep.h: validating and expanding `sweep:` sections.
#include "cluster/sweep.h"

#include <regex>

#include "core/errors.h"

namespace troupe::cluster {
namespace {

using core::ConfigNode;
using core::Origin;

// One "key = value" of an element; `value` points into the sweep node, which outlives the expansion.
struct Assignment {
  std::string key;
  const ConfigNode* value = nullptr;
  Origin where;  // where the key was written, for errors
};
using Point = std::vector<Assignment>;

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

[[noreturn]] void fail(const Origin& where, const std::string& what) {
  throw ConfigError(where.describe() + ": " + what);
}

void reject_unknown_keys(const ConfigNode& sweep) {
  const std::vector<std::string> valid = {"grid", "list"};
  for (const auto& entry : sweep.entries()) {
    const std::string& key = entry.first;
    if (key == "grid" || key == "list") continue;
    std::string msg = "unknown key 'sweep." + key + "'";
    const std::string guess = core::nearest_key(key, valid);
    if (!guess.empty()) msg += " (did you mean 'sweep." + guess + "'?)";
    fail(sweep.key_origin(key), msg + "; valid keys in 'sweep': grid, list");
  }
}

// Keys a sweep may set: any config key except the ones that say what and where the run is.
void check_key(const std::string& key, const Origin& where) {
  static const std::regex dotted(R"([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)");
  if (!std::regex_match(key, dotted))
    fail(where, "sweep key '" + key + "': expected a dotted config key such as task.lr");
  const std::string first = key.substr(0, key.find('.'));
  if (key == "kind" || key == "run" || key == "run.name" || key == "run.dir" || first == "sweep" || first == "cluster")
    fail(where, "sweep key '" + key +
                    "': a sweep cannot set kind, run.name, run.dir, sweep.* or cluster.* (each "
                    "element's run directory is <run.dir>/<run.name>/<element label>)");
}

// Every scalar of a value must fit on one sweep.tsv field: no tabs, no line breaks.
void check_value(const ConfigNode& value, const std::string& key) {
  if (value.is_scalar() && value.text().find_first_of("\t\n\r") != std::string::npos)
    fail(value.origin(), "sweep value of '" + key + "': tabs and line breaks are not allowed in sweep values");
  for (const auto& item : value.items()) check_value(item, key);
  for (const auto& entry : value.entries()) check_value(entry.second, key);
}

// The axes of `grid:`, in file order; a nested mapping stands for dotted keys (task: {lr: [...]}).
void collect_axes(const ConfigNode& node, const std::string& prefix,
                  std::vector<std::pair<Assignment, const ConfigNode*>>& axes) {
  for (const auto& [key, value] : node.entries()) {
    const std::string full = join_key(prefix, key);
    const Origin where = node.key_origin(key);
    if (value.is_map() && !value.entries().empty()) {
      collect_axes(value, full, axes);
      continue;
    }
    check_key(full, where);
    if (!value.is_sequence() || value.items().empty())
      fail(value.is_null() ? where : value.origin(),
           "sweep.grid." + full + ": expected a non-empty list of values, got " +
               (value.is_sequence() ? std::string("an empty list") : value.type_name()));
    for (const auto& item : value.items()) check_value(item, full);
    axes.push_back({Assignment{full, nullptr, where}, &value});
  }
}

// The cartesian product of the axes; the last axis varies fastest (itertools.product order).
std::vector<Point> grid_points(const ConfigNode& grid) {
  if (!grid.is_map() || grid.entries().empty())
    fail(grid.origin(), "sweep.grid: expected a mapping of dotted keys to lists of values, got " +
                            (grid.is_map() ? std::string("an empty mapping") : grid.type_name()));
  std::vector<std::pair<Assignment, const ConfigNode*>> axes;
  collect_axes(grid, "", axes);
  std::vector<Point> points(1);
  for (const auto& [axis, values] : axes) {
    std::vector<Point> next;
    for (const auto& point : points) {
      for (const auto& value : values->items()) {
        Point p = point;
        p.push_back(Assignment{axis.key, &value, axis.where});
        next.push_back(std::move(p));
      }
    }
    points = std::move(next);
  }
  return points;
}

void flatten_item(const ConfigNode& node, const std::string& prefix, Point& out) {
  for (const auto& [key, value] : node.entries()) {
    const std::string full = join_key(prefix, key);
    const Origin where = node.key_origin(key);
    if (value.is_map() && !value.entries().empty()) {
      flatten_item(value, full, out);
      continue;
    }
    check_key(full, where);
    check_value(value, full);
    for (const auto& a : out)
      if (a.key == full) fail(where, "sweep.list: key '" + full + "' appears twice in one item");
    out.push_back(Assignment{full, &value, where});
  }
}

std::vector<Point> list_points(const ConfigNode& list) {
  if (!list.is_sequence() || list.items().empty())
    fail(list.origin(), "sweep.list: expected a non-empty list of mappings (dotted key: value), got " +
                            (list.is_sequence() ? std::string("an empty list") : list.type_name()));
  std::vector<Point> points;
  for (size_t i = 0; i < list.items().size(); ++i) {
    const ConfigNode& item = list.items()[i];
    if (!item.is_map() || item.entries().empty())
      fail(item.origin(), "sweep.list[" + std::to_string(i) +
                              "]: expected a non-empty mapping of dotted keys to "
                              "values, got " +
                              (item.is_map() ? std::string("an empty mapping") : item.type_name()));
    Point p;
    flatten_item(item, "", p);
    points.push_back(std::move(p));
  }
  return points;
}

bool plain_scalar(const std::string& s) {
  static const std::regex re(R"([A-Za-z0-9_./+-]+)");
  if (!std::regex_match(s, re)) return false;
  // Leading "-" followed by a space would be a YAML sequence; "- " cannot match the regex, so only these remain.
  return s != "-" && s != "." && s != "..";
}

std::string double_quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string label_text(const ConfigNode& value) {
  return value.is_scalar() ? value.text() : override_value_text(value);
}

}  // namespace

std::string override_value_text(const ConfigNode& value) {
  switch (value.type()) {
    case ConfigNode::Type::Null: return "null";
    case ConfigNode::Type::Scalar: return plain_scalar(value.text()) ? value.text() : double_quoted(value.text());
    case ConfigNode::Type::Sequence: {
      std::string s = "[";
      for (size_t i = 0; i < value.items().size(); ++i) s += (i ? ", " : "") + override_value_text(value.items()[i]);
      return s + "]";
    }
    case ConfigNode::Type::Map: {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, v] : value.entries()) {
        s += (first ? "" : ", ") + (plain_scalar(k) ? k : double_quoted(k)) + ": " + override_value_text(v);
        first = false;
      }
      return s + "}";
    }
  }
  return "null";
}

std::string format_override(const std::string& key, const std::string& value) {
  return key + "=" + (plain_scalar(value) ? value : double_quoted(value));
}

std::string sweep_label(int index, const std::vector<std::pair<std::string, std::string>>& key_values) {
  std::string label = std::to_string(index);
  for (const auto& [key, value] : key_values) {
    const auto dot = key.rfind('.');
    label += "_" + (dot == std::string::npos ? key : key.substr(dot + 1)) + "-" + value;
  }
  for (auto& c : label) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-';
    if (!ok) c = '_';
  }
  if (label.size() > 64) label.resize(64);
  return label;
}

std::vector<SweepElement> expand_sweep(const ConfigNode& sweep) {
  if (!sweep.is_map() || sweep.entries().empty())
    fail(sweep.origin(), "sweep: expected a mapping with grid: and/or list:, got " +
                             (sweep.is_map() ? std::string("an empty mapping") : sweep.type_name()));
  reject_unknown_keys(sweep);
  const ConfigNode* grid = sweep.find("grid");
  const ConfigNode* list = sweep.find("list");
  const std::vector<Point> grid_part = grid ? grid_points(*grid) : std::vector<Point>(1);
  const std::vector<Point> list_part = list ? list_points(*list) : std::vector<Point>(1);

  std::vector<SweepElement> elements;
  for (const auto& l : list_part) {
    for (const auto& a : l)
      for (const auto& g : grid_part.front())
        if (a.key == g.key) fail(a.where, "sweep.list sets '" + a.key + "', which sweep.grid also sweeps");
    for (const auto& g : grid_part) {
      SweepElement e;
      e.index = static_cast<int>(elements.size());
      std::vector<std::pair<std::string, std::string>> label_parts;
      for (const Point* part : {&l, &g}) {
        for (const auto& a : *part) {
          e.overrides.push_back(a.key + "=" + override_value_text(*a.value));
          label_parts.emplace_back(a.key, label_text(*a.value));
        }
      }
      e.label = sweep_label(e.index, label_parts);
      elements.push_back(std::move(e));
    }
  }
  return elements;
}

}  // namespace troupe::cluster
