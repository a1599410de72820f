#include "evaluation/task.h"

#include <fmt/format.h>

#include <fstream>
#include <set>

#include "core/config_tree.h"
#include "core/errors.h"

namespace troupe::evaluation {
namespace {

using core::ConfigNode;

[[noreturn]] void fail(const ConfigNode& node, const std::string& what) {
  throw ConfigError(fmt::format("{}: {}", node.origin().describe(), what));
}

std::string scalar(const ConfigNode& node, const std::string& key) {
  if (!node.is_scalar()) fail(node, fmt::format("{} must be a string, got {}", key, node.type_name()));
  return node.text();
}

int64_t integer(const ConfigNode& node, const std::string& key) {
  const std::string text = scalar(node, key);
  try {
    size_t used = 0;
    const int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail(node, fmt::format("{} must be an integer, got '{}'", key, text));
}

std::vector<std::string> string_list(const ConfigNode& node, const std::string& key) {
  std::vector<std::string> out;
  if (node.is_scalar()) return {node.text()};
  if (!node.is_sequence()) fail(node, fmt::format("{} must be a list of strings, got {}", key, node.type_name()));
  for (const auto& item : node.items()) out.push_back(scalar(item, key + "[]"));
  return out;
}

// Keys of lm-eval's TaskConfig that do not change what is computed here.
const std::set<std::string> kIgnored = {"tag", "group", "metadata", "should_decontaminate", "doc_to_decontamination_query",
                                        "dataset_name", "output_type_kwargs"};

}  // namespace

std::string output_type_name(OutputType t) {
  switch (t) {
    case OutputType::kMultipleChoice:
      return "multiple_choice";
    case OutputType::kLoglikelihood:
      return "loglikelihood";
    case OutputType::kGenerateUntil:
      return "generate_until";
  }
  return "?";
}

std::string TaskSpec::fewshot_source() const {
  if (!fewshot_split.empty()) return fewshot_split;
  if (!training_split.empty()) return training_split;
  if (!validation_split.empty()) return validation_split;
  return test_split;
}

std::filesystem::path TaskSpec::split_file(const std::string& split) const {
  for (const auto& [name, file] : data_files) {
    if (name == split) return file;
  }
  throw ConfigError(fmt::format("{}: task {} has no data file for split '{}' (dataset_kwargs.data_files)",
                                source.string(), this->name, split));
}

TaskSpec load_task(const std::filesystem::path& yaml) {
  std::ifstream in(yaml);
  if (!in) throw ConfigError(fmt::format("{}: cannot open the task file", yaml.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const ConfigNode root = core::parse_config_yaml(text, yaml.string());
  if (!root.is_map()) throw ConfigError(fmt::format("{}: a task file is a mapping of lm-eval's task keys", yaml.string()));
  TaskSpec t;
  t.source = yaml;
  const auto base = yaml.parent_path();
  bool has_output_type = false;
  for (const auto& [key, node] : root.entries()) {
    const core::Origin where = root.key_origin(key);
    if (key == "task") {
      t.name = scalar(node, key);
    } else if (key == "dataset_path") {
      if (scalar(node, key) != "json") {
        fail(node, fmt::format("dataset_path must be 'json' (local JSON lines in dataset_kwargs.data_files), got '{}'",
                               node.text()));
      }
    } else if (key == "dataset_kwargs") {
      const ConfigNode* files = node.find("data_files");
      if (!node.is_map() || !files || !files->is_map()) fail(node, "dataset_kwargs needs data_files: {split: file}");
      for (const auto& [k, _] : node.entries()) {
        if (k != "data_files") fail(node, fmt::format("dataset_kwargs.{} is not supported (only data_files)", k));
      }
      for (const auto& [split, file] : files->entries()) {
        std::filesystem::path p = scalar(file, "data_files." + split);
        if (p.is_relative()) p = base / p;
        t.data_files.emplace_back(split, p);
      }
    } else if (key == "test_split") {
      t.test_split = scalar(node, key);
    } else if (key == "training_split") {
      t.training_split = scalar(node, key);
    } else if (key == "validation_split") {
      t.validation_split = scalar(node, key);
    } else if (key == "fewshot_split") {
      t.fewshot_split = scalar(node, key);
    } else if (key == "output_type") {
      has_output_type = true;
      const std::string v = scalar(node, key);
      if (v == "multiple_choice") {
        t.output_type = OutputType::kMultipleChoice;
      } else if (v == "loglikelihood") {
        t.output_type = OutputType::kLoglikelihood;
      } else if (v == "generate_until") {
        t.output_type = OutputType::kGenerateUntil;
      } else {
        fail(node, fmt::format("output_type must be multiple_choice, loglikelihood or generate_until, got '{}'", v));
      }
    } else if (key == "doc_to_text") {
      t.doc_to_text = scalar(node, key);
    } else if (key == "doc_to_target") {
      t.doc_to_target = scalar(node, key);
    } else if (key == "doc_to_choice") {
      if (node.is_sequence()) {
        t.choice_list = string_list(node, key);
      } else {
        t.doc_to_choice = scalar(node, key);
      }
    } else if (key == "target_delimiter") {
      t.target_delimiter = node.is_null() ? "" : scalar(node, key);
    } else if (key == "fewshot_delimiter") {
      t.fewshot_delimiter = node.is_null() ? "" : scalar(node, key);
    } else if (key == "description") {
      t.description = node.is_null() ? "" : scalar(node, key);
    } else if (key == "num_fewshot") {
      t.num_fewshot = integer(node, key);
      if (t.num_fewshot < 0) fail(node, "num_fewshot must be >= 0");
    } else if (key == "generation_kwargs") {
      if (!node.is_map()) fail(node, "generation_kwargs must be a mapping");
      for (const auto& [k, v] : node.entries()) {
        if (k == "until") {
          t.until = string_list(v, "generation_kwargs.until");
        } else if (k == "max_gen_toks") {
          t.max_gen_toks = integer(v, "generation_kwargs.max_gen_toks");
          if (t.max_gen_toks < 1) fail(v, "generation_kwargs.max_gen_toks must be >= 1");
        } else if (k == "do_sample") {
          if (scalar(v, k) != "false") fail(v, "generation_kwargs.do_sample: only greedy generation (false) is supported");
        } else if (k == "temperature") {
          if (std::stod(scalar(v, k)) != 0.0) fail(v, "generation_kwargs.temperature: only greedy (0) is supported");
        } else {
          fail(v, fmt::format("generation_kwargs.{} is not supported (until, max_gen_toks, do_sample, temperature)", k));
        }
      }
    } else if (key == "metric_list") {
      if (!node.is_sequence()) fail(node, "metric_list must be a list of {metric: NAME}");
      for (const auto& m : node.items()) {
        const ConfigNode* name = m.find("metric");
        if (!m.is_map() || !name) fail(m, "each metric_list entry needs metric: NAME");
        for (const auto& [k, v] : m.entries()) {
          if (k != "metric" && k != "aggregation" && k != "higher_is_better") {
            fail(v, fmt::format("metric_list option {} is not supported", k));
          }
        }
        t.metrics.push_back(scalar(*name, "metric"));
      }
    } else if (key == "repeats") {
      if (integer(node, key) != 1) fail(node, "repeats: only 1 is supported");
    } else if (key == "fewshot_config") {
      const ConfigNode* sampler = node.find("sampler");
      if (!node.is_map() || !sampler || scalar(*sampler, "sampler") != "default" || node.entries().size() != 1) {
        fail(node, "fewshot_config: only {sampler: default} is supported");
      }
    } else if (kIgnored.count(key)) {
      if (key == "dataset_name" && !node.is_null()) fail(node, "dataset_name must be null for local JSON data");
    } else {
      throw ConfigError(fmt::format("{}: unknown or unsupported task key '{}'", where.describe(), key));
    }
  }
  if (t.name.empty()) throw ConfigError(fmt::format("{}: missing key 'task' (the task's name)", yaml.string()));
  if (!has_output_type) throw ConfigError(fmt::format("{}: missing key 'output_type'", yaml.string()));
  if (t.doc_to_text.empty()) throw ConfigError(fmt::format("{}: missing key 'doc_to_text'", yaml.string()));
  if (t.doc_to_target.empty() && t.output_type != OutputType::kLoglikelihood) {
    throw ConfigError(fmt::format("{}: missing key 'doc_to_target'", yaml.string()));
  }
  if (t.output_type == OutputType::kMultipleChoice && t.doc_to_choice.empty() && t.choice_list.empty()) {
    throw ConfigError(fmt::format("{}: a multiple_choice task needs doc_to_choice", yaml.string()));
  }
  if (t.data_files.empty()) throw ConfigError(fmt::format("{}: missing dataset_kwargs.data_files", yaml.string()));
  t.split_file(t.test_split);  // the test split must exist
  return t;
}

std::vector<TaskSpec> load_tasks(const std::filesystem::path& yaml) {
  std::ifstream in(yaml);
  if (!in) throw ConfigError(fmt::format("{}: cannot open", yaml.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const ConfigNode root = core::parse_config_yaml(text, yaml.string());
  const ConfigNode* tasks = root.is_map() ? root.find("tasks") : nullptr;
  if (!tasks) return {load_task(yaml)};
  if (!tasks->is_sequence() || root.entries().size() != 1) {
    throw ConfigError(fmt::format("{}: a suite is `tasks: [task files]` and nothing else", yaml.string()));
  }
  std::vector<TaskSpec> out;
  for (const auto& t : tasks->items()) {
    if (!t.is_scalar()) throw ConfigError(fmt::format("{}: tasks entries are file names", t.origin().describe()));
    std::filesystem::path p = t.text();
    out.push_back(load_task(p.is_relative() ? yaml.parent_path() / p : p));
  }
  return out;
}

std::vector<nlohmann::json> load_documents(const std::filesystem::path& jsonl) {
  std::ifstream in(jsonl);
  if (!in) throw DataError(fmt::format("{}: cannot open the documents", jsonl.string()));
  std::vector<nlohmann::json> docs;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw DataError(fmt::format("{}:{}: not JSON: {}", jsonl.string(), number, e.what()));
    }
    if (!doc.is_object()) throw DataError(fmt::format("{}:{}: expected a JSON object", jsonl.string(), number));
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace troupe::evaluation
