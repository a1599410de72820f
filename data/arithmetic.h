// A procedurally generated arithmetic task for reasoning-style RL on a CPU: problems "a+b=" / "a-b=" / "a*b=" with
// operands of up to `digits` digits, their exact answers, and everything a run needs — the byte-level tokenizer
// (256 bytes + <|endoftext|>), SFT data ({"prompt", "response"}), RL prompts and a held-out test set ({"prompt",
// "answer"}, the reference answers the `answer` reward verifies against). Train and test problems are disjoint.
// Deterministic for a seed. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace troupe::data {

struct ArithmeticOptions {
  int64_t digits = 2;           // operands uniform in [0, 10^digits): the difficulty
  std::string ops = "+";        // operators drawn uniformly from these characters: + - *
  int64_t sft_count = 2000;     // SFT examples
  int64_t prompt_count = 1000;  // RL prompts
  int64_t test_count = 200;     // held-out problems (disjoint from the others)
  double sft_error_rate = 0.0;  // fraction of SFT responses replaced by a wrong answer (a weaker starting policy)
  // Fraction of SFT responses that show their working before the answer (arithmetic_working), so that responses
  // vary in length. When > 0 every SFT response states its answer after the marker "#### " (verify with the
  // `marker` answer format): "#### 82" or "37+5=42 42+40=82 #### 82".
  double working_rate = 0.0;
  // Each working response takes one of the valid decompositions of its problem at random (arithmetic_working's
  // paths) instead of always the first: several reasoning paths to one answer, what self-consistency votes over.
  bool varied_working = false;
  // Fraction of SFT responses that ramble instead of answering: the working repeated 8 times, no answer. Longer
  // than any sensible max_length, such a response is truncated and so never ends (no EOS): the policy starts with
  // a long, always-wrong mode, as LLMs that run into their token limit have (the setting of the GRPO length bias).
  double ramble_rate = 0.0;
  uint64_t seed = 1;
};

struct ArithmeticProblem {
  std::string prompt;  // "37+45="
  std::string answer;  // "82"
};

// `count` distinct problems not in `exclude` (prompt texts), in the order drawn. ConfigError for bad options, or when
// the problem space is too small for the counts asked.
std::vector<ArithmeticProblem> draw_arithmetic_problems(const ArithmeticOptions& options, int64_t count,
                                                        uint64_t stream, const std::vector<std::string>& exclude);

// The working for `prompt` ("a<op>b="): b split into its decimal places, one step per non-zero place from the
// ones up, each applying the operator to the running value (for *, partial products and then their sums).
// Examples: "37+45=" -> "37+5=42 42+40=82"; "37-45=" -> "37-5=32 32-40=-8"; "37*45=" -> "37*5=185 37*40=1480
// 185+1480=1665"; "37+40=" -> "37+40=77"; "37+0=" -> "37+0=37". ConfigError for a prompt not of that form.
// `path` picks another valid decomposition: 0 as above; 1 the places from the largest down ("37+40=77 77+5=82");
// for + and * also 2 and 3, the operands swapped ("45+7=52 52+30=82", "45+30=75 75+7=82"). Each ends at the answer.
std::string arithmetic_working(const std::string& prompt, int path = 0);
// The number of paths arithmetic_working has for the operator of `prompt` (4 for + and *, 2 for -).
int arithmetic_working_paths(const std::string& prompt);

struct ArithmeticTaskFiles {
  std::filesystem::path tokenizer, sft, prompts, test;
};

// Writes DIR/tokenizer.json, DIR/sft.jsonl, DIR/prompts.jsonl and DIR/test.jsonl.
ArithmeticTaskFiles write_arithmetic_task(const std::filesystem::path& dir, const ArithmeticOptions& options);

}  // namespace troupe::data
