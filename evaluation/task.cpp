#include "evaluation/task.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>

#include "core/config_tree.h"
#include "core/errors.h"
#include "metrics/py_regex.h"

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

double number(const ConfigNode& node, const std::string& key) {
  const std::string text = scalar(node, key);
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail(node, fmt::format("{} must be a number, got '{}'", key, text));
}

bool boolean(const ConfigNode& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  fail(node, fmt::format("{} must be true or false, got '{}'", key, text));
}

void check_regex(const ConfigNode& node, const std::string& pattern) {
  try {
    metrics::PyRegex rx(pattern);
  } catch (const ConfigError& e) {
    fail(node, e.what());
  }
}

FilterPipeline parse_pipeline(const ConfigNode& node, size_t index) {
  const std::string where = fmt::format("filter_list[{}]", index);
  if (!node.is_map()) fail(node, where + " must be a mapping {name: NAME, filter: [steps]}");
  FilterPipeline p;
  const ConfigNode* steps = nullptr;
  for (const auto& [k, v] : node.entries()) {
    if (k == "name") {
      p.name = scalar(v, where + ".name");
    } else if (k == "filter") {
      steps = &v;
    } else {
      fail(v, fmt::format("{}.{} is not a filter_list key (name, filter)", where, k));
    }
  }
  if (p.name.empty()) fail(node, where + " needs a name");
  if (!steps || !steps->is_sequence() || steps->items().empty()) fail(node, where + ".filter must be a list of steps");
  for (const auto& step : steps->items()) {
    const ConfigNode* function = step.is_map() ? step.find("function") : nullptr;
    if (!function) fail(step, where + ": each filter step needs function: NAME");
    FilterStep f;
    f.function = scalar(*function, "function");
    static const std::set<std::string> kFunctions = {"regex",         "take_first",        "take_first_k",
                                                     "majority_vote", "remove_whitespace", "lowercase"};
    if (!kFunctions.count(f.function)) {
      fail(*function, fmt::format("{}: filter function '{}' is not supported (regex, take_first, take_first_k, "
                                  "majority_vote, remove_whitespace, lowercase)",
                                  where, f.function));
    }
    for (const auto& [k, v] : step.entries()) {
      if (k == "function") continue;
      if (f.function == "regex" && k == "regex_pattern") {
        f.regex_pattern = scalar(v, k);
        check_regex(v, f.regex_pattern);
      } else if (f.function == "regex" && k == "group_select") {
        f.group_select = integer(v, k);
      } else if (f.function == "regex" && k == "fallback") {
        f.fallback = scalar(v, k);
      } else if (f.function == "take_first_k" && k == "k") {
        f.k = integer(v, k);
        if (f.k < 1) fail(v, "take_first_k: k must be >= 1");
      } else {
        fail(v, fmt::format("{}: '{}' is not an option of filter {}", where, k, f.function));
      }
    }
    if (f.function == "take_first_k" && f.k < 1) fail(step, "take_first_k needs k: N (>= 1)");
    if (!p.steps.empty() && p.steps.back().function == "take_first") {
      fail(step, fmt::format("{} ({}): take_first gives the answer and must be the last step", where, p.name));
    }
    p.steps.push_back(f);
  }
  if (p.steps.back().function != "take_first") {
    fail(node, fmt::format("{} ({}): the last step must be take_first (one answer per document)", where, p.name));
  }
  return p;
}

// Keys of lm-eval's TaskConfig that do not change what is computed here.
const std::set<std::string> kIgnored = {"tag",
                                        "group",
                                        "metadata",
                                        "should_decontaminate",
                                        "doc_to_decontamination_query",
                                        "dataset_name",
                                        "output_type_kwargs"};

}  // namespace

std::string output_type_name(OutputType t) {
  switch (t) {
    case OutputType::kMultipleChoice: return "multiple_choice";
    case OutputType::kLoglikelihood: return "loglikelihood";
    case OutputType::kGenerateUntil: return "generate_until";
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
  if (!root.is_map())
    throw ConfigError(fmt::format("{}: a task file is a mapping of lm-eval's task keys", yaml.string()));
  TaskSpec t;
  t.source = yaml;
  const auto base = yaml.parent_path();
  bool has_output_type = false;
  std::optional<bool> do_sample;
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
          do_sample = boolean(v, "generation_kwargs.do_sample");
        } else if (k == "temperature") {
          t.temperature = number(v, "generation_kwargs.temperature");
          if (t.temperature < 0) fail(v, "generation_kwargs.temperature must be >= 0");
        } else if (k == "top_k") {
          t.top_k = integer(v, "generation_kwargs.top_k");
          if (t.top_k < 0) fail(v, "generation_kwargs.top_k must be >= 0");
        } else if (k == "top_p") {
          t.top_p = number(v, "generation_kwargs.top_p");
          if (!(t.top_p > 0 && t.top_p <= 1)) fail(v, "generation_kwargs.top_p must be in (0, 1]");
        } else {
          fail(v, fmt::format("generation_kwargs.{} is not supported (until, max_gen_toks, do_sample, temperature, "
                              "top_k, top_p)",
                              k));
        }
      }
      // lm-eval's HF model: do_sample: true needs a temperature > 0 (transformers refuses 0); without do_sample the
      // model's default (greedy) holds, whatever the temperature.
      if (do_sample && *do_sample && t.temperature <= 0) {
        fail(node, "generation_kwargs: do_sample: true needs a temperature > 0");
      }
      t.do_sample = do_sample.value_or(false);
    } else if (key == "metric_list") {
      if (!node.is_sequence()) fail(node, "metric_list must be a list of {metric: NAME}");
      for (const auto& m : node.items()) {
        const ConfigNode* name = m.find("metric");
        if (!m.is_map() || !name) fail(m, "each metric_list entry needs metric: NAME");
        const std::string metric = scalar(*name, "metric");
        for (const auto& [k, v] : m.entries()) {
          if (k == "metric" || k == "aggregation" || k == "higher_is_better") continue;
          if (metric == "exact_match" && k == "ignore_case") {
            t.exact_match.ignore_case = boolean(v, k);
          } else if (metric == "exact_match" && k == "ignore_punctuation") {
            t.exact_match.ignore_punctuation = boolean(v, k);
          } else if (metric == "exact_match" && k == "ignore_numbers") {
            t.exact_match.ignore_numbers = boolean(v, k);
          } else if (metric == "exact_match" && k == "regexes_to_ignore") {
            t.exact_match.regexes_to_ignore = string_list(v, k);
            for (const auto& r : t.exact_match.regexes_to_ignore) check_regex(v, r);
          } else {
            fail(v, fmt::format("metric_list option {} of {} is not supported", k, metric));
          }
        }
        t.metrics.push_back(metric);
      }
    } else if (key == "repeats") {
      t.repeats = integer(node, key);
      if (t.repeats < 1) fail(node, "repeats must be >= 1");
    } else if (key == "filter_list") {
      if (!node.is_sequence()) fail(node, "filter_list must be a list of {name, filter: [steps]}");
      std::set<std::string> names;
      for (const auto& item : node.items()) {
        t.filters.push_back(parse_pipeline(item, t.filters.size()));
        if (!names.insert(t.filters.back().name).second) {
          fail(item, fmt::format("filter_list: two pipelines named '{}'", t.filters.back().name));
        }
      }
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
  if (t.output_type != OutputType::kGenerateUntil && (t.repeats != 1 || !t.filters.empty())) {
    throw ConfigError(fmt::format("{}: repeats and filter_list are for generate_until tasks", yaml.string()));
  }
  for (const auto& p : t.filters) {
    for (const auto& step : p.steps) {
      if (step.function == "take_first_k" && step.k > t.repeats) {
        throw ConfigError(fmt::format("{}: filter {}: take_first_k k={} needs repeats >= {} (repeats is {})",
                                      yaml.string(), p.name, step.k, step.k, t.repeats));
      }
    }
  }
  return t;
}

bool FilterPipeline::votes() const {
  return std::any_of(steps.begin(), steps.end(), [](const FilterStep& s) { return s.function == "majority_vote"; });
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
    } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
      throw DataError(fmt::format("{}:{}: not JSON: {}", jsonl.string(), number, e.what()));
    }
    if (!doc.is_object()) throw DataError(fmt::format("{}:{}: expected a JSON object", jsonl.string(), number));
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace troupe::evaluation
