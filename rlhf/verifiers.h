// Verifiable ("rule-based") rewards: a verifier instead of a reward model. Answer extraction from free text, exact
// numeric comparison with the reference answer of the prompt, and a format check. Torch-free; the reward role runs
// them through rlhf/reward_functions.h (types `answer` and `format`).
//
// The rules are strict on purpose: a reward that pays for a truncated response, for two answers or for an answer
// buried in the middle of the text is a reward the policy will learn to hack.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace troupe::tokenizers {
class ChatTemplate;
}  // namespace troupe::tokenizers

namespace troupe::rlhf {

// Where the answer stands in a response.
enum class AnswerFormat {
  kBare,    // the whole response (trimmed of whitespace) is one number: "82"
  kMarker,  // exactly one `marker` (e.g. "####", GSM8K's), followed by one number and nothing but whitespace
  kBoxed,   // exactly one \boxed{NUMBER}, followed by nothing but whitespace
};
constexpr auto config_names(AnswerFormat) {
  return std::array{std::pair{AnswerFormat::kBare, "bare"}, std::pair{AnswerFormat::kMarker, "marker"},
                    std::pair{AnswerFormat::kBoxed, "boxed"}};
}

// A number in canonical form: optional '-', the integer digits without leading zeros, and for a non-integer a '.'
// and the fraction digits without trailing zeros; "-0" is "0". Accepts an optional sign, digits with optional
// thousands separators in groups of three ("1,234,567"), and an optional fraction ("3.50", ".5", "2."). Anything
// else (letters, "1e3", "1,23", "--2", a lone "." or "") is nullopt.
// Examples: "+007" -> "7"; "-1,000.50" -> "-1000.5"; "-0.0" -> "0"; "12a" -> nullopt.
std::optional<std::string> canonical_number(const std::string& text);

// The answer text of `response` under `format` (not yet canonical), or nullopt when the response does not state
// exactly one answer in the right place. marker is used by kMarker only.
// Examples (marker "####"): "2+2 is 4 #### 4" -> "4"; "#### 4 #### 5" -> nullopt (two answers);
// "#### 4 because" -> nullopt (text after the answer); "the answer is 4" -> nullopt (no marker).
std::optional<std::string> extract_answer(const std::string& response, AnswerFormat format, const std::string& marker);

struct VerifierOptions {
  AnswerFormat format = AnswerFormat::kBare;
  std::string marker = "####";
  bool require_eos = true;  // a response cut at max_new_tokens scores 0 even when its text looks right
};

// 1 when the response ended with EOS (if required), states exactly one well-formed answer and that answer equals
// the reference numerically (canonical forms equal); 0 otherwise. A reference that is not a number is a DataError.
double verify_answer(const std::string& response, bool ended_with_eos, const std::string& reference,
                     const VerifierOptions& options);

// 1 when the response ended with EOS (if required) and states exactly one well-formed answer, right or wrong.
double verify_format(const std::string& response, bool ended_with_eos, const VerifierOptions& options);

// Reference answers by prompt text, from a JSONL file with a prompt field and an answer field (a string or a
// number). A line may give its prompt as a conversation under "messages" instead: its key is then the prompt the
// policy sees, `chat_template`'s render with the generation prompt (ConfigError naming prompts.chat_template when
// it is null). DataError naming file:line for a missing field, a non-numeric answer or a prompt listed twice with
// different answers.
std::map<std::string, std::string> load_reference_answers(const std::string& path, const std::string& prompt_field,
                                                          const std::string& answer_field,
                                                          const tokenizers::ChatTemplate* chat_template = nullptr);
// As above, adding to `answers` (several files into one map: a prompt whose answer differs from one already there,
// from this file or an earlier one, is the same DataError naming file:line).
void load_reference_answers(const std::string& path, const std::string& prompt_field, const std::string& answer_field,
                            std::map<std::string, std::string>& answers,
                            const tokenizers::ChatTemplate* chat_template = nullptr);

}  // namespace troupe::rlhf
