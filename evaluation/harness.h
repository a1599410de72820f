// The evaluation harness: runs a task (evaluation/task.h) on a model as lm-evaluation-harness does, and scores it.
//   multiple_choice  one continuation per choice (target_delimiter + choice) after the context; metrics acc (argmax
//                    of the log-likelihoods), acc_norm (argmax of log-likelihood per character of the choice),
//                    acc_bytes (per UTF-8 byte), exact_match (greedy decoding gives the gold choice); default acc,
//                    acc_norm
//   loglikelihood    the target after the context; perplexity (exp of minus the mean log-likelihood) and acc
//                    (greedy gives the target); default both
//   generate_until   generation (greedy, or sampled as generation_kwargs say) until a stop string, the end-of-text
//                    token or max_gen_toks, cut at the first stop string, `repeats` times per document; each filter
//                    pipeline of filter_list extracts an answer from the responses (chain-of-thought: a regex for
//                    "The answer is N"; self-consistency: majority_vote over the sampled answers) and each metric is
//                    scored per pipeline, named METRIC,PIPELINE as lm-eval names it (without filter_list: the first
//                    response as it is, named METRIC); a pipeline with majority_vote also reports vote_share,PIPELINE:
//                    the share of the responses that voted for the answer, the self-consistency confidence.
//                    Metrics: exact_match (string equality with the target, with lm-eval's options) or any text
//                    metric of metrics/text_metrics.h over the corpus (bleu, rougeL, chrf, squad, ...); default
//                    exact_match. A sampled response draws from a generator seeded by (seed, document, repeat), so
//                    it does not depend on the batch size.
// Contexts are lm-eval's: description, then num_fewshot examples drawn with Python's Random(fewshot_seed) from the
// few-shot split (text + target_delimiter + answer + fewshot_delimiter each), then the document's text. Log-
// likelihoods run on the KV cache in batches (evaluation/loglikelihood.h); generation in batches of prompts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "evaluation/probes.h"
#include "evaluation/task.h"
#include "models/gpt.h"
#include "tokenizers/bpe_tokenizer.h"

namespace troupe::evaluation {

struct HarnessOptions {
  int64_t batch_size = 32;       // continuations per batch; prompts per generation batch
  int64_t limit = 0;             // evaluate the first `limit` documents (0 = all)
  int64_t num_fewshot = -1;      // -1: the task's num_fewshot
  uint64_t fewshot_seed = 1234;  // lm-eval's default fewshot_random_seed
  uint64_t seed = 1234;          // sampled generation (lm-eval's default torch seed; its draws differ from these)
  // Robustness: each document's input fields (its string fields that doc_to_target and doc_to_choice do not name)
  // perturbed before its text is rendered; few-shot examples stay clean.
  std::optional<Perturbation> perturbation;
  // Called after each batch with (documents done, documents in all): a progress bar.
  std::function<void(int64_t, int64_t)> progress;
};

struct ExampleRecord {
  int64_t doc_id = 0;
  std::string context;
  std::vector<std::string> continuations;  // multiple_choice: the choices with their delimiter; loglikelihood: 1
  std::vector<double> loglikelihoods;
  std::vector<bool> greedy;
  int64_t gold = -1;                     // multiple_choice: the gold choice
  std::string target;                    // the target text (generate_until, loglikelihood)
  std::string generation;                // generate_until: the generated text, cut at the first stop string
  std::vector<std::string> generations;  // generate_until: every repeat's (generation is the first)
  struct Filtered {
    std::string pipeline;  // "none" without filter_list
    std::string answer;
    double vote_share = -1;  // majority_vote: votes for the answer / responses voting; -1 without a vote
  };
  std::vector<Filtered> filtered;
  std::vector<std::pair<std::string, double>> values;  // per-example metric values
};

struct MetricValue {
  std::string name;
  double value = 0;
  double stderr_of_mean = -1;  // lm-eval's stderr of a mean metric (sample stddev / sqrt(n)); -1 when none
};

struct TaskResult {
  std::string task;
  std::string perturbation;  // its label, "" for the clean run
  std::string output_type;
  int64_t num_fewshot = 0;
  int64_t documents = 0;
  std::vector<MetricValue> metrics;
  std::vector<ExampleRecord> examples;
  double seconds = 0;
};

// The model and its tokenizer: text is encoded as Hugging Face's tokenizers do (special-token text becomes the
// special token); `eot_id` is the end-of-text token (empty contexts and the default stop).
struct EvalModel {
  models::Gpt& model;
  const tokenizers::BpeTokenizer& tokenizer;
  int64_t eot_id;
};

TaskResult run_task(const EvalModel& m, const TaskSpec& task, const HarnessOptions& options = {});

// lm-eval's _encode_pair: trailing whitespace of the context moves to the continuation, the pair is encoded whole,
// and the continuation is what follows the context's own encoding.
std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const tokenizers::BpeTokenizer& tokenizer,
                                                                  const std::string& context,
                                                                  const std::string& continuation);

}  // namespace troupe::evaluation
