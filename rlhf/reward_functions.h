// Programmatic rewards for PPO-RLHF experiments: a lexicon sentiment score (the analogue of the IMDb sentiment
// reward in the RLHF papers), a length/format reward and a target-pattern reward whose optimum is known exactly.
// Scalar functions of one sample on the CPU; not learned reward models and not the reward worker role.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/config_binder.h"

namespace troupe::rlhf {

// One generated sample, as the reward sees it.
struct RewardSample {
  std::vector<int64_t> prompt;    // prompt token ids
  std::vector<int64_t> response;  // generated token ids, without the EOS token
  std::string response_text;      // the decoded response
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

enum class RewardFunctionType { kLexicon, kLength, kPattern };
constexpr auto config_names(RewardFunctionType) {
  return std::array{std::pair{RewardFunctionType::kLexicon, "lexicon"},
                    std::pair{RewardFunctionType::kLength, "length"},
                    std::pair{RewardFunctionType::kPattern, "pattern"}};
}

struct RewardFunctionConfig {
  std::optional<RewardFunctionType> type;  // lexicon | length | pattern (required)
  std::string lexicon;                     // lexicon: path of the word<TAB>score TSV
  int64_t target_length = 16;              // length: response tokens that score 0
  double eos_bonus = 0.0;                  // length: added when the response ended with EOS
  std::vector<int64_t> pattern;            // pattern: target token ids

  template <class V>
  void visit(V& v) {
    v.field("type", type, "lexicon | length | pattern");
    v.path("lexicon", lexicon, "lexicon: word<TAB>score TSV (AFINN format)");
    v.field("target_length", target_length, "length: response tokens that score 0");
    v.field("eos_bonus", eos_bonus, "length: bonus for ending with EOS");
    v.field("pattern", pattern, "pattern: target token ids");
  }
  void validate(core::ConfigValidator& v) const;
};

// The reward function `config` describes (loads the lexicon for type lexicon).
std::unique_ptr<RewardFunction> make_reward_function(const RewardFunctionConfig& config);

}  // namespace troupe::rlhf
