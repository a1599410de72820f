// Programmatic rewards for PPO-RLHF experiments: a lexicon sentiment score (the analogue of the IMDb sentiment
// reward in the RLHF papers), a length/format reward, a target-pattern reward whose optimum is known exactly,
// verified answers, and the toxicity probe and the text metrics as rewards (lexicon toxicity, a reference metric).
// Scalar functions of one sample on the CPU; not learned reward models and not the reward worker role.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/config_binder.h"
#include "rlhf/verifiers.h"

namespace troupe::rlhf {

// One generated sample, as the reward sees it.
struct RewardSample {
  std::vector<int64_t> prompt;    // prompt token ids
  std::vector<int64_t> response;  // generated token ids, without the EOS token
  std::string response_text;      // the decoded response
  std::string prompt_text;        // the decoded prompt (when the run has a tokenizer)
  bool ended_with_eos = false;    // false: truncated at the length limit
};

class RewardFunction {
 public:
  virtual ~RewardFunction();
  virtual std::string name() const = 0;
  virtual double score(const RewardSample& sample) const = 0;
  // score() of each sample, in order.
  std::vector<double> score_batch(const std::vector<RewardSample>& samples) const;
};

// Mean word valence of response_text under an AFINN-style lexicon (a TSV of `word<TAB>integer score`, e.g.
// AFINN-165 with scores −5…+5).
//
// Words: text is lower-cased (ASCII letters only; other bytes pass through) and split into maximal runs of
// letters, digits and non-ASCII bytes (so "naïve", "gr8" and "n00b" are words), joined by a single apostrophe or
// hyphen with a word character on both sides ("can't", "well-being"). A hyphenated word not in the lexicon counts
// as its parts ("ultra-happy" -> "ultra", "happy"). Lexicon entries with spaces ("not good", "does not work") are
// matched as phrases of consecutive words, longest first, and replace the scores of the words they cover.
//
// Score = (Σ valences of the matched words and phrases) / max(1, number of words): a length-independent mean, so
// padding a response with neutral words dilutes it. Example with {good: 3, bad: -3, "not good": -2}:
// "Good, good... BAD!" -> (3 + 3 − 3) / 3 = 1; "not good at all" -> −2 / 4 = −0.5; "" -> 0.
//
// Loading: blank lines are skipped; a line without exactly one tab, with an empty word or a non-integer score, or a
// word listed twice is a DataError naming file:line.
class LexiconSentimentReward : public RewardFunction {
 public:
  explicit LexiconSentimentReward(const std::string& path);
  std::string name() const override { return "lexicon"; }
  double score(const RewardSample& sample) const override;

  // The words of `text` as defined above, after lower-casing (hyphenated words not yet split).
  static std::vector<std::string> split_words(const std::string& text);
  size_t size() const { return valence_.size(); }

 private:
  std::unordered_map<std::string, int> valence_;  // word or space-joined phrase -> valence
  size_t max_phrase_words_ = 1;
};

// −|len(response) − target| / target + (ended_with_eos ? eos_bonus : 0): 0 (plus the bonus) at exactly
// target_length tokens, −1 for an empty response or one twice as long. Example, target 4, bonus 0.5: 6 tokens
// ending with EOS -> −0.5 + 0.5 = 0; 4 tokens truncated -> 0.
class LengthFormatReward : public RewardFunction {
 public:
  LengthFormatReward(int64_t target_length, double eos_bonus);  // ConfigError unless target_length >= 1
  std::string name() const override { return "length"; }
  double score(const RewardSample& sample) const override;

 private:
  int64_t target_length_;
  double eos_bonus_;
};

// Fraction of positions i < L = len(target) with response[i] == target[i]; positions a short response lacks count
// as wrong and tokens past L are ignored, so the score is in [0, 1] and 1 is attained by the target itself (and by
// any response that starts with it). Example, target (1, 2, 3): (1, 5, 3) -> 2/3; (1, 2) -> 2/3; () -> 0.
//
// The reward is a sum of per-position terms r(y) = Σ_i [y_i = t_i] / L, so for a tiny vocabulary the optimal
// KL-regularised policy π*(y) ∝ π_ref(y) exp(r(y) / β) is computable: by enumerating V^L sequences, or in closed
// form when π_ref factorises over positions (e.g. uniform): π*(y_i) ∝ π_ref(y_i) exp([y_i = t_i] / (L β)).
// That makes it a known-answer test for a PPO/DPO implementation.
class TargetPatternReward : public RewardFunction {
 public:
  explicit TargetPatternReward(std::vector<int64_t> target);  // ConfigError for an empty target
  std::string name() const override { return "pattern"; }
  double score(const RewardSample& sample) const override;

 private:
  std::vector<int64_t> target_;
};

// Verifiable rewards (rlhf/verifiers.h): 1 for a response whose one well-formed answer equals the prompt's reference
// answer (kAnswer) or that states one well-formed answer at all (kFormat), else 0.
class AnswerReward : public RewardFunction {
 public:
  // answers: reference answer by prompt text; empty for a format check.
  AnswerReward(std::map<std::string, std::string> answers, VerifierOptions options, bool format_only);
  std::string name() const override { return format_only_ ? "format" : "answer"; }
  // DataError when the prompt has no reference answer (kAnswer).
  double score(const RewardSample& sample) const override;

 private:
  std::map<std::string, std::string> answers_;
  VerifierOptions options_;
  bool format_only_;
};

// The toxicity probe as a reward (metrics/toxicity.h): −1 for a response whose text contains a word of the lexicon
// (whole words, Python-lower-cased), else 0, so maximising the reward minimises the toxicity rate. Example, lexicon
// {hell}: "What the HELL." -> −1; "a shell and hello" -> 0; "" -> 0.
class ToxicityReward : public RewardFunction {
 public:
  explicit ToxicityReward(std::set<std::string> lexicon);  // ConfigError for an empty lexicon
  std::string name() const override { return "toxicity"; }
  double score(const RewardSample& sample) const override;

 private:
  std::set<std::string> lexicon_;
};

// A reference-based text metric of the response against the prompt's reference text(s), at sentence level: the
// per-example value of metrics::compute_text_metric(metric, {response}, {references}) on that metric's own scale:
// rouge1/rouge2/rougeL/rougeLsum F-measure, meteor, exact_match and accuracy in [0, 1]; bleu, chrf, chrf++ and
// squad (token F1) in [0, 100]; `rouge` gives rouge1's F. TER is an edit rate (lower is better), so its reward is
// −TER. Example, rougeL: response "the cat sat", reference "the cat was here": LCS 2, P = 2/3, R = 2/4, F = 4/7.
class TextMetricReward : public RewardFunction {
 public:
  // references: the reference texts by prompt text. ConfigError for a metric compute_text_metric does not know.
  TextMetricReward(std::string metric, std::map<std::string, std::vector<std::string>> references);
  std::string name() const override { return metric_; }
  // DataError naming the prompt when it has no reference.
  double score(const RewardSample& sample) const override;

 private:
  std::string metric_;
  std::map<std::string, std::vector<std::string>> references_;
};

// Σ_i w_i·r_i(sample) over several rewards.
class WeightedSumReward : public RewardFunction {
 public:
  explicit WeightedSumReward(std::vector<std::pair<double, std::unique_ptr<RewardFunction>>> parts);
  std::string name() const override;
  double score(const RewardSample& sample) const override;

 private:
  std::vector<std::pair<double, std::unique_ptr<RewardFunction>>> parts_;
};

enum class RewardFunctionType { kLexicon, kLength, kPattern, kAnswer, kFormat, kToxicity, kMetric };
constexpr auto config_names(RewardFunctionType) {
  return std::array{
      std::pair{RewardFunctionType::kLexicon, "lexicon"}, std::pair{RewardFunctionType::kLength, "length"},
      std::pair{RewardFunctionType::kPattern, "pattern"}, std::pair{RewardFunctionType::kAnswer, "answer"},
      std::pair{RewardFunctionType::kFormat, "format"},   std::pair{RewardFunctionType::kToxicity, "toxicity"},
      std::pair{RewardFunctionType::kMetric, "metric"}};
}

struct RewardFunctionConfig {
  std::optional<RewardFunctionType> type;            // lexicon | length | pattern | ... (required)
  std::string lexicon;                               // lexicon, toxicity: path of the word<TAB>score TSV
  double max_score = -4;                             // toxicity: TSV words scored <= max_score are toxic
  int64_t target_length = 16;                        // length: response tokens that score 0
  double eos_bonus = 0.0;                            // length: added when the response ended with EOS
  std::vector<int64_t> pattern;                      // pattern: target token ids
  std::string answers;                               // answer, metric: JSONL of references (empty = prompts.file)
  std::string answer_field = "answer";               // answer: the JSONL field holding the reference answer
  std::string metric;                                // metric: a metrics/text_metrics.h name (rougeL, bleu, ...)
  std::string reference_field = "reference";         // metric: the JSONL field holding the reference text(s)
  AnswerFormat answer_format = AnswerFormat::kBare;  // answer, format: where the answer stands
  std::string marker = "####";                       // answer, format: the marker of answer_format marker
  bool require_eos = true;                           // answer, format: a truncated response scores 0
  double weight = 1.0;                               // the weight of this reward in reward.functions

  template <class V>
  void visit(V& v) {
    v.field("type", type,
            "lexicon | length | pattern | answer (verified answer) | format (answer well-formed) | toxicity (-1 for "
            "a lexicon word) | metric (text metric against the prompt's reference)");
    v.path("lexicon", lexicon, "lexicon: word<TAB>score TSV (AFINN format); toxicity: that TSV or a word list");
    v.field("max_score", max_score, "toxicity: TSV lexicon words scored at most this are toxic");
    v.field("target_length", target_length, "length: response tokens that score 0");
    v.field("eos_bonus", eos_bonus, "length: bonus for ending with EOS");
    v.field("pattern", pattern, "pattern: target token ids");
    v.path("answers", answers,
           "answer, metric: JSONL with the prompt and its reference answer or text (empty = prompts.file)");
    v.field("answer_field", answer_field, "answer: JSONL field of the reference answer");
    v.field("metric", metric,
            "metric: rouge1 | rouge2 | rougeL | rougeLsum | bleu | chrf | meteor | ... (sentence level)");
    v.field("reference_field", reference_field, "metric: JSONL field of the reference text (a string or a list)");
    v.field("answer_format", answer_format, "answer, format: bare | marker | boxed");
    v.field("marker", marker, "answer, format: the answer marker (answer_format marker)");
    v.field("require_eos", require_eos, "answer, format: score 0 unless the response ended with EOS");
    v.field("weight", weight, "weight of this reward when listed in reward.functions");
  }
  void validate(core::ConfigValidator& v) const;
};

// Where the answer and metric rewards find their references when `answers` is empty: the run's prompt files
// (training and evaluation prompts) and their prompt field.
struct RewardContext {
  std::vector<std::string> prompts_files;
  std::string prompt_field = "prompt";
  std::string chat_template;  // prompts.chat_template: renders the prompt of a {"messages"} line (the answer's key)
};

// Reference texts by prompt text, from a JSONL file with a prompt field (or a {"messages"} conversation rendered by
// `chat_template`, keyed as load_reference_answers keys it) and a reference field holding a string or a non-empty
// list of strings; added to `references`. DataError naming file:line for a missing or malformed field or a prompt
// listed again with different references; DataError for a file with no lines.
void load_reference_texts(const std::string& path, const std::string& prompt_field, const std::string& reference_field,
                          std::map<std::string, std::vector<std::string>>& references,
                          const tokenizers::ChatTemplate* chat_template = nullptr);

// The reward function `config` describes (loads the lexicon for types lexicon and toxicity, the references for
// types answer and metric).
std::unique_ptr<RewardFunction> make_reward_function(const RewardFunctionConfig& config,
                                                     const RewardContext& context = {});
// The weighted sum of `configs` (each its `weight`); one config alone is that reward unweighted.
std::unique_ptr<RewardFunction> make_reward_function(const std::vector<RewardFunctionConfig>& configs,
                                                     const RewardContext& context = {});

}  // namespace troupe::rlhf
