// An evaluation task, described as lm-evaluation-harness describes one: a YAML file with lm-eval's own keys (a
// subset: those of tasks over local JSON-lines data), so the same file runs under `troupe eval run` and
// `lm_eval --include_path`. Documents are JSON objects, one per line; prompts come from Jinja templates over a
// document's fields (lm-eval's doc_to_text / doc_to_target / doc_to_choice).
//
//   task: arithmetic_mc                      # the task's name
//   dataset_path: json                       # local JSON lines (the only source: nothing is downloaded)
//   dataset_kwargs: {data_files: {test: test.jsonl, train: train.jsonl}}   # relative to this file
//   test_split: test                         # and optionally training_split / validation_split / fewshot_split
//   output_type: multiple_choice             # | loglikelihood | generate_until
//   doc_to_text: "Question: {{question}}\nAnswer:"   # a field name or a Jinja template
//   doc_to_choice: "{{choices}}"             # multiple_choice: a list field, template rendering a list, or a list
//   doc_to_target: "{{answer}}"              # an index into the choices, a choice, or the target text
//   target_delimiter: " "                    # between context and continuation (default " ")
//   fewshot_delimiter: "\n\n"                # between few-shot examples (default "\n\n")
//   num_fewshot: 0                           # examples drawn with Python's Random(fewshot_seed), as lm-eval
//   description: ""                          # text before everything
//   generation_kwargs: {until: ["\n"], max_gen_toks: 32}   # generate_until; greedy
//   metric_list: [{metric: acc}, {metric: acc_norm}]        # see harness.h for the metrics of each output type
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe::evaluation {

enum class OutputType { kMultipleChoice, kLoglikelihood, kGenerateUntil };
std::string output_type_name(OutputType t);

struct TaskSpec {
  std::string name;
  std::filesystem::path source;  // the YAML file
  std::vector<std::pair<std::string, std::filesystem::path>> data_files;  // split -> file
  std::string test_split = "test";
  std::string training_split, validation_split, fewshot_split;
  OutputType output_type = OutputType::kMultipleChoice;
  // Each a field name or a Jinja template (lm-eval's rule: a field of the document when one has that name).
  std::string doc_to_text, doc_to_target, doc_to_choice;
  std::vector<std::string> choice_list;  // doc_to_choice given as a YAML list
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  std::string description;
  int64_t num_fewshot = 0;
  std::vector<std::string> until;  // generate_until: stop strings (the end-of-text token's text is added)
  int64_t max_gen_toks = 256;
  std::vector<std::string> metrics;  // metric names in order; a default set per output type when empty

  // The split few-shot examples come from: fewshot_split, else training_split, else validation_split, else the test
  // split, as lm-eval chooses. Only when fewshot_split names the test split is a document left out of its own
  // examples (lm-eval's rule: without it, the test split's draw may include the document itself).
  std::string fewshot_source() const;
  std::filesystem::path split_file(const std::string& split) const;  // ConfigError naming the task when absent
};

// Parses a task YAML. ConfigError naming file:line and the key for an unknown key, a missing required key, a value
// of the wrong kind or an unsupported lm-eval feature (other dataset sources, filters, repeats > 1).
TaskSpec load_task(const std::filesystem::path& yaml);

// A task file (with `task:`) or a suite file (`tasks: [task files]`, relative to the suite): every task parsed.
std::vector<TaskSpec> load_tasks(const std::filesystem::path& yaml);

// The documents of a JSON-lines file: each line one JSON object (blank lines skipped). DataError naming file:line.
std::vector<nlohmann::json> load_documents(const std::filesystem::path& jsonl);

}  // namespace troupe::evaluation
