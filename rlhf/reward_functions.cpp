// Implementation of rlhf/reward_functions.h.
#include "rlhf/reward_functions.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "data/chat_data.h"
#include "data/text_datasets.h"
#include "metrics/text_metrics.h"
#include "metrics/toxicity.h"

namespace troupe::rlhf {

namespace {

bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9');
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string join(const std::vector<std::string>& words, size_t begin, size_t end) {
  std::string s;
  for (size_t i = begin; i < end; ++i) s += (i > begin ? " " : "") + words[i];
  return s;
}

// Splits "a-b-c" into its parts.
void append_hyphen_parts(const std::string& word, std::vector<std::string>& out) {
  size_t start = 0;
  for (size_t i = 0; i <= word.size(); ++i) {
    if (i == word.size() || word[i] == '-') {
      if (i > start) out.push_back(word.substr(start, i - start));
      start = i + 1;
    }
  }
}

std::string text_metric_choices() {
  std::string out;
  for (const auto& name : metrics::text_metric_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// The reference texts of one JSONL line: a string, or a non-empty list of strings.
std::vector<std::string> references_of(const nlohmann::ordered_json& j, const std::string& field,
                                       const std::string& where) {
  const auto it = j.find(field);
  bool ok = it != j.end() && (it->is_string() || (it->is_array() && !it->empty()));
  std::vector<std::string> refs;
  if (ok && it->is_string()) refs.push_back(it->get<std::string>());
  if (ok && it->is_array()) {
    for (const auto& r : *it) {
      ok = ok && r.is_string();
      if (r.is_string()) refs.push_back(r.get<std::string>());
    }
  }
  if (!ok)
    throw DataError(where + ": expected a field '" + field + "' holding the reference (a string or a list of strings)");
  return refs;
}

[[noreturn]] void lexicon_error(const std::string& path, size_t line, const std::string& what) {
  throw DataError(path + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

RewardFunction::~RewardFunction() = default;

std::vector<double> RewardFunction::score_batch(const std::vector<RewardSample>& samples) const {
  std::vector<double> scores;
  scores.reserve(samples.size());
  for (const auto& s : samples) scores.push_back(score(s));
  return scores;
}

// ---- LexiconSentimentReward ----

LexiconSentimentReward::LexiconSentimentReward(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open the lexicon");
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos)
      lexicon_error(path, line_no, "expected 'word<TAB>integer score', got '" + line + "'");
    const std::string entry = line.substr(0, tab);
    std::string number = line.substr(tab + 1);
    while (!number.empty() && number.back() == ' ') number.pop_back();
    const char* first = number.data() + (!number.empty() && number[0] == '+' ? 1 : 0);
    const char* last = number.data() + number.size();
    int valence = 0;
    const auto [ptr, ec] = std::from_chars(first, last, valence);
    if (first == last || ec != std::errc() || ptr != last)
      lexicon_error(path, line_no, "score '" + number + "' is not an integer");
    const std::vector<std::string> words = split_words(entry);
    if (words.empty()) lexicon_error(path, line_no, "entry '" + entry + "' has no word characters");
    const std::string key = join(words, 0, words.size());
    if (!valence_.emplace(key, valence).second) lexicon_error(path, line_no, "'" + key + "' is listed twice");
    max_phrase_words_ = std::max(max_phrase_words_, words.size());
  }
  if (in.bad()) throw IoError(path + ": read error");
  if (valence_.empty()) throw DataError(path + ": the lexicon has no entries");
}

std::vector<std::string> LexiconSentimentReward::split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string current;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_word_byte(c)) {
      current += ascii_lower(c);
    } else if ((c == '\'' || c == '-') && !current.empty() && is_word_byte(current.back()) && i + 1 < text.size() &&
               is_word_byte(text[i + 1])) {
      current += c;  // inside a word: "can't", "well-being"
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

double LexiconSentimentReward::score(const RewardSample& sample) const {
  std::vector<std::string> words;
  for (auto& w : split_words(sample.response_text)) {
    if (w.find('-') != std::string::npos && valence_.count(w) == 0)
      append_hyphen_parts(w, words);
    else
      words.push_back(std::move(w));
  }
  double total = 0.0;
  size_t i = 0;
  while (i < words.size()) {
    size_t taken = 1;
    // Longest phrase first; a phrase's valence replaces those of its words.
    for (size_t n = std::min(max_phrase_words_, words.size() - i); n >= 1; --n) {
      const auto it = valence_.find(n == 1 ? words[i] : join(words, i, i + n));
      if (it != valence_.end()) {
        total += it->second;
        taken = n;
        break;
      }
    }
    i += taken;
  }
  return total / static_cast<double>(std::max<size_t>(1, words.size()));
}

// ---- LengthFormatReward ----

LengthFormatReward::LengthFormatReward(int64_t target_length, double eos_bonus)
    : target_length_(target_length), eos_bonus_(eos_bonus) {
  if (target_length < 1)
    throw ConfigError("reward.target_length = " + std::to_string(target_length) + ": expected an integer >= 1");
}

double LengthFormatReward::score(const RewardSample& sample) const {
  const double len = static_cast<double>(sample.response.size());
  const double target = static_cast<double>(target_length_);
  return -std::abs(len - target) / target + (sample.ended_with_eos ? eos_bonus_ : 0.0);
}

// ---- TargetPatternReward ----

TargetPatternReward::TargetPatternReward(std::vector<int64_t> target) : target_(std::move(target)) {
  if (target_.empty()) throw ConfigError("reward.pattern: expected at least one token id");
}

double TargetPatternReward::score(const RewardSample& sample) const {
  const size_t n = std::min(target_.size(), sample.response.size());
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) hits += sample.response[i] == target_[i] ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(target_.size());
}

// ---- config ----

void RewardFunctionConfig::validate(core::ConfigValidator& v) const {
  v.require(type.has_value(), "type", std::string("null"), core::enum_choices<RewardFunctionType>());
  v.require(type != RewardFunctionType::kLexicon || !lexicon.empty(), "lexicon", lexicon,
            "a lexicon TSV path for type lexicon");
  v.require(type != RewardFunctionType::kToxicity || !lexicon.empty(), "lexicon", lexicon,
            "a lexicon path (word<TAB>score TSV or word list) for type toxicity");
  v.require(std::isfinite(max_score), "max_score", max_score, "a finite number");
  v.require(type != RewardFunctionType::kMetric || metrics::is_text_metric(metric), "metric", metric,
            "one of " + text_metric_choices() + " for type metric");
  v.require(!reference_field.empty(), "reference_field", reference_field, "a JSONL field name");
  v.require(target_length >= 1, "target_length", target_length, "an integer >= 1");
  v.require(std::isfinite(eos_bonus), "eos_bonus", eos_bonus, "a finite number");
  v.require(type != RewardFunctionType::kPattern || !pattern.empty(), "pattern", pattern,
            "at least one token id for type pattern");
  bool ids_ok = true;
  for (const int64_t id : pattern) ids_ok = ids_ok && id >= 0;
  v.require(ids_ok, "pattern", pattern, "token ids >= 0");
  v.require(!answer_field.empty(), "answer_field", answer_field, "a JSONL field name");
  v.require(answer_format != AnswerFormat::kMarker || !marker.empty(), "marker", marker,
            "a non-empty marker for answer_format marker");
  v.require(std::isfinite(weight), "weight", weight, "a finite number");
}

AnswerReward::AnswerReward(std::map<std::string, std::string> answers, VerifierOptions options, bool format_only)
    : answers_(std::move(answers)), options_(std::move(options)), format_only_(format_only) {}

double AnswerReward::score(const RewardSample& s) const {
  if (format_only_) return verify_format(s.response_text, s.ended_with_eos, options_);
  const auto it = answers_.find(s.prompt_text);
  if (it == answers_.end())
    throw DataError("answer reward: no reference answer for the prompt '" + s.prompt_text + "'");
  return verify_answer(s.response_text, s.ended_with_eos, it->second, options_);
}

// ---- ToxicityReward, TextMetricReward ----

ToxicityReward::ToxicityReward(std::set<std::string> lexicon) : lexicon_(std::move(lexicon)) {
  if (lexicon_.empty()) throw ConfigError("reward toxicity: the lexicon has no words");
}

double ToxicityReward::score(const RewardSample& s) const {
  return metrics::first_toxic_word(s.response_text, lexicon_).empty() ? 0.0 : -1.0;
}

TextMetricReward::TextMetricReward(std::string metric, std::map<std::string, std::vector<std::string>> references)
    : metric_(std::move(metric)), references_(std::move(references)) {
  if (!metrics::is_text_metric(metric_))
    throw ConfigError("reward.metric = '" + metric_ + "': expected one of " + text_metric_choices());
}

double TextMetricReward::score(const RewardSample& s) const {
  const auto it = references_.find(s.prompt_text);
  if (it == references_.end())
    throw DataError("metric reward: no reference text for the prompt '" + s.prompt_text + "'");
  const double value = metrics::compute_text_metric(metric_, {s.response_text}, {it->second}).per_example.at(0);
  return metric_ == "ter" ? -value : value;  // an edit rate: fewer edits, more reward
}

void load_reference_texts(const std::string& path, const std::string& prompt_field, const std::string& reference_field,
                          std::map<std::string, std::vector<std::string>>& references,
                          const tokenizers::ChatTemplate* chat_template) {
  int64_t rows = 0;
  data::for_each_jsonl_ordered(
      path, "reference texts", [&](const nlohmann::ordered_json& j, const std::string& where, int64_t) {
        const std::string prompt =
            data::prompt_of_line(j, prompt_field, chat_template, "prompts.chat_template", where).text;
        std::vector<std::string> refs = references_of(j, reference_field, where);
        const auto [it, inserted] = references.emplace(prompt, refs);
        if (!inserted && it->second != refs)
          throw DataError(where + ": prompt listed again with a different reference ('" + it->second.front() +
                          "' vs '" + refs.front() + "')");
        ++rows;
        return true;
      });
  if (rows == 0) throw DataError(path + ": no reference texts");
}

WeightedSumReward::WeightedSumReward(std::vector<std::pair<double, std::unique_ptr<RewardFunction>>> parts)
    : parts_(std::move(parts)) {
  if (parts_.empty()) throw ConfigError("reward.functions: expected at least one reward");
}

std::string WeightedSumReward::name() const {
  std::string out;
  for (const auto& [w, f] : parts_) out += (out.empty() ? "" : " + ") + std::to_string(w) + "*" + f->name();
  return out;
}

double WeightedSumReward::score(const RewardSample& s) const {
  double total = 0;
  for (const auto& [w, f] : parts_) total += w * f->score(s);
  return total;
}

std::unique_ptr<RewardFunction> make_reward_function(const RewardFunctionConfig& config, const RewardContext& context) {
  if (!config.type) throw ConfigError("reward.type: expected " + core::enum_choices<RewardFunctionType>());
  const VerifierOptions verifier{config.answer_format, config.marker, config.require_eos};
  switch (*config.type) {
    case RewardFunctionType::kAnswer: {
      std::map<std::string, std::string> answers;
      const auto chat_template = data::load_chat_template(context.chat_template);
      for (const std::string& file : config.answers.empty() ? context.prompts_files : std::vector{config.answers}) {
        if (file.empty()) continue;
        load_reference_answers(file, context.prompt_field, config.answer_field, answers, chat_template.get());
      }
      if (answers.empty())
        throw ConfigError("reward answer: set answers (or prompts.file) to a JSONL of reference answers");
      return std::make_unique<AnswerReward>(std::move(answers), verifier, /*format_only=*/false);
    }
    case RewardFunctionType::kMetric: {
      std::map<std::string, std::vector<std::string>> references;
      const auto chat_template = data::load_chat_template(context.chat_template);
      for (const std::string& file : config.answers.empty() ? context.prompts_files : std::vector{config.answers}) {
        if (file.empty()) continue;
        load_reference_texts(file, context.prompt_field, config.reference_field, references, chat_template.get());
      }
      if (references.empty())
        throw ConfigError("reward metric: set answers (or prompts.file) to a JSONL of reference texts");
      return std::make_unique<TextMetricReward>(config.metric, std::move(references));
    }
    case RewardFunctionType::kToxicity:
      return std::make_unique<ToxicityReward>(metrics::load_toxicity_lexicon(config.lexicon, config.max_score));
    case RewardFunctionType::kFormat:
      return std::make_unique<AnswerReward>(std::map<std::string, std::string>{}, verifier, true);
    case RewardFunctionType::kLexicon: return std::make_unique<LexiconSentimentReward>(config.lexicon);
    case RewardFunctionType::kLength:
      return std::make_unique<LengthFormatReward>(config.target_length, config.eos_bonus);
    case RewardFunctionType::kPattern: return std::make_unique<TargetPatternReward>(config.pattern);
  }
  throw ConfigError("reward.type: unknown value");
}

std::unique_ptr<RewardFunction> make_reward_function(const std::vector<RewardFunctionConfig>& configs,
                                                     const RewardContext& context) {
  if (configs.size() == 1 && configs[0].weight == 1.0) return make_reward_function(configs[0], context);
  std::vector<std::pair<double, std::unique_ptr<RewardFunction>>> parts;
  for (const RewardFunctionConfig& c : configs) parts.emplace_back(c.weight, make_reward_function(c, context));
  return std::make_unique<WeightedSumReward>(std::move(parts));
}

}  // namespace troupe::rlhf
