// Tools around trained policies for RLHF pipelines, each a pure library call behind a CLI command:
//   split_documents   — text files cut at separator lines (the fortune/strfile `%` format) into documents, written
//                       one per file (for `tokenizer train` / `data prepare`), plus SFT pairs and prompt files;
//   label_preferences — a programmatic "labeller": sample two responses per prompt from a policy, score both with
//                       a reward function, write {"prompt","chosen","rejected"} JSONL (ties dropped and counted;
//                       conversational prompts give TRL's conversational preference lines);
//   evaluate_policies — sample K responses per prompt from a reference and from each policy, and report the true
//                       reward, the sequence KL to the reference and the win rate against the reference.
// Not training: the trainers and the PPO controller live in experiments/trainer.h and rlhf/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rlhf/reward_functions.h"

namespace troupe::experiments {

struct SplitDocumentsOptions {
  std::vector<std::string> inputs;   // files or directories (recursive); files holding a NUL byte are skipped
  std::string separator_line = "%";  // a line equal to this (after trimming \r) ends a document; "" = one per file
  int64_t min_words = 1;             // documents with fewer whitespace-separated words are dropped
  int64_t max_words = 0;             // ... and with more (0 = no limit)
  int64_t max_documents = 0;         // keep at most this many (after the seeded shuffle; 0 = all)
  int64_t prompt_words = 0;          // > 0: also write SFT pairs: the first N words are the prompt ...
  int64_t response_words = 32;       // ... and at most this many following words the response
  double val_fraction = 0.1;         // share of documents in the val files
  uint64_t seed = 1234;              // shuffle and split
  std::filesystem::path output;      // directory
};

struct SplitDocumentsReport {
  int64_t files = 0, skipped_binary = 0, documents = 0, dropped_length = 0, train = 0, val = 0, sft_pairs = 0;
};

// Writes OUTPUT/docs/{train,val}/NNNNNN.txt (one document each, whitespace runs collapsed to single spaces and
// lines kept) and, with prompt_words > 0, OUTPUT/sft_{train,val}.jsonl ({"prompt","response"}; the response
// starts with a space) and OUTPUT/prompts_{train,val}.jsonl ({"prompt"}) from documents with more than
// prompt_words words. ConfigError for bad options; IoError when nothing is left.
SplitDocumentsReport split_documents(const SplitDocumentsOptions& options);

struct SamplingOptions {
  int64_t max_new_tokens = 24;
  double temperature = 1.0;  // 1 = the model's own distribution (needed for an unbiased KL estimate)
  int64_t batch_size = 64;   // prompts per generate() call
  uint64_t seed = 1;
};

struct LabelPreferencesOptions {
  std::filesystem::path policy;     // HF GPT-2 directory or Troupe run / checkpoint
  std::string tokenizer, encoding;  // tokenizer for prompts and for decoding responses
  std::string chat_template;        // tokenizer_config.json rendering {"messages"} prompt lines (empty = none)
  std::filesystem::path prompts;    // JSONL: a string field "prompt", or a conversation under "messages"
  int64_t max_prompts = 0;          // 0 = all
  rlhf::RewardFunctionConfig reward;
  SamplingOptions sampling;
  double val_fraction = 0.1;  // share of pairs written to val.jsonl
  int threads = 0;
  std::string device = "auto";   // auto | cpu | cuda | cuda:N
  std::filesystem::path output;  // directory: train.jsonl, val.jsonl
};

struct LabelPreferencesReport {
  int64_t prompts = 0, pairs = 0, ties = 0, train = 0, val = 0;
  double mean_reward = 0, mean_gap = 0;  // over all samples; mean |r_chosen − r_rejected| over kept pairs
};

LabelPreferencesReport label_preferences(const LabelPreferencesOptions& options);

struct PolicyEvalOptions {
  std::filesystem::path reference;  // the policy others are compared with (e.g. SFT)
  std::vector<std::pair<std::string, std::filesystem::path>> policies;  // name -> model path
  std::string tokenizer, encoding;
  std::string chat_template;      // tokenizer_config.json rendering {"messages"} prompt lines (empty = none)
  std::filesystem::path prompts;  // JSONL: a string field "prompt", or a conversation under "messages"
  int64_t max_prompts = 0;        // 0 = all
  int64_t samples = 4;            // responses per prompt and policy
  rlhf::RewardFunctionConfig reward;
  SamplingOptions sampling;
  int threads = 0;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
};

// One row per policy (the reference first, named "reference"):
//   reward_mean / reward_std  — true reward of its samples;
//   kl_to_reference           — mean over samples of Σ_t log π(y_t|·) − log π_ref(y_t|·) (an unbiased estimate of
//                               KL(π ‖ π_ref) per sequence at temperature 1; 0 for the reference itself);
//   win_rate                  — P(r(policy sample j) > r(reference sample j)) for the same prompt and j, ties ½;
//   length_mean, eos_rate     — response tokens and share ending with EOS.
struct PolicyEvalRow {
  std::string name, path;
  double reward_mean = 0, reward_std = 0, kl_to_reference = 0, win_rate = 0.5, length_mean = 0, eos_rate = 0;
  // When the prompts carry reference responses ("reference": text or "references": [texts]): rouge-score's ROUGE-L
  // F-measure (mean over samples) and sacreBLEU's corpus BLEU of the samples against them.
  std::optional<double> rouge_l, bleu;
};
std::vector<PolicyEvalRow> evaluate_policies(const PolicyEvalOptions& options);

// The rows as a fixed-width table (for the terminal) and as JSON {"columns": [...], "rows": [[...], ...]}.
std::string format_policy_table(const std::vector<PolicyEvalRow>& rows);
std::string policy_table_json(const std::vector<PolicyEvalRow>& rows);

}  // namespace troupe::experiments
