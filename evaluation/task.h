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
//   generation_kwargs: {until: ["\n"], max_gen_toks: 32}   # generate_until; greedy unless do_sample: true with a
//                                            # temperature > 0 (and optionally top_k, top_p), as lm-eval's HF model
//   repeats: 1                               # generations per document (self-consistency: sample N, vote)
//   filter_list:                             # answer extraction, each pipeline scored on its own (lm-eval's filters)
//     - name: strict-match
//       filter: [{function: regex, regex_pattern: "#### (\\-?[0-9\\.\\,]+)"}, {function: take_first}]
//     - name: maj@8
//       filter: [{function: take_first_k, k: 8}, {function: regex, regex_pattern: "..."},
//                {function: majority_vote}, {function: take_first}]
//   metric_list: [{metric: acc}, {metric: acc_norm}]        # see harness.h for the metrics of each output type
//   metric_list: [{metric: exact_match, ignore_case: true, regexes_to_ignore: [","]}]   # exact_match's options
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace troupe::evaluation {

enum class OutputType { kMultipleChoice, kLoglikelihood, kGenerateUntil };
std::string output_type_name(OutputType t);

// One step of a filter pipeline: lm-eval's filter functions over a document's list of responses.
//   regex           each response -> re.findall(regex_pattern)[group_select] (a negative index counts from the end;
//                   of a match with several groups, its first non-empty group), stripped; fallback when no match
//   take_first_k    the first k responses
//   majority_vote   the most common response (ties: the one seen first), as a list of one
//   remove_whitespace, lowercase   each response stripped / lower-cased (Python's str.strip, str.lower)
//   take_first      the first response: the pipeline's answer (every pipeline ends with it)
struct FilterStep {
  std::string function;
  std::string regex_pattern = R"(#### (\-?[0-9\.\,]+))";  // lm-eval's defaults
  int64_t group_select = 0;
  std::string fallback = "[invalid]";
  int64_t k = 0;
};
struct FilterPipeline {
  std::string name;
  std::vector<FilterStep> steps;
  bool votes() const;  // has a majority_vote step (its vote share is reported)
};

// exact_match's options (lm-eval's exact_match_hf_evaluate): each regex's matches removed from prediction and
// reference, then lower-cased, then ASCII punctuation and digits removed, as asked.
struct ExactMatchOptions {
  bool ignore_case = false, ignore_punctuation = false, ignore_numbers = false;
  std::vector<std::string> regexes_to_ignore;
};

struct TaskSpec {
  std::string name;
  std::filesystem::path source;                                           // the YAML file
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
  bool do_sample = false;  // with temperature > 0; lm-eval: a temperature without do_sample: true stays greedy
  double temperature = 0.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  int64_t repeats = 1;                  // generations per document
  std::vector<FilterPipeline> filters;  // empty: lm-eval's default, the first response as it is ("none")
  ExactMatchOptions exact_match;
  std::vector<std::string> metrics;  // metric names in order; a default set per output type when empty

  // The split few-shot examples come from: fewshot_split, else training_split, else validation_split, else the test
  // split, as lm-eval chooses. Only when fewshot_split names the test split is a document left out of its own
  // examples (lm-eval's rule: without it, the test split's draw may include the document itself).
  std::string fewshot_source() const;
  std::filesystem::path split_file(const std::string& split) const;  // ConfigError naming the task when absent
};

// Parses a task YAML. ConfigError naming file:line and the key for an unknown key, a missing required key, a value
// of the wrong kind or an unsupported lm-eval feature (other dataset sources, filter functions not listed above), and
// for a regular expression that does not compile.
TaskSpec load_task(const std::filesystem::path& yaml);

// A task file (with `task:`) or a suite file (`tasks: [task files]`, relative to the suite): every task parsed.
std::vector<TaskSpec> load_tasks(const std::filesystem::path& yaml);

// The documents of a JSON-lines file: each line one JSON object (blank lines skipped). DataError naming file:line.
std::vector<nlohmann::json> load_documents(const std::filesystem::path& jsonl);

}  // namespace troupe::evaluation
