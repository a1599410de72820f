// Implementation of rlhf/verifiers.h.
#include "rlhf/verifiers.h"

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "data/chat_data.h"
#include "data/text_datasets.h"

namespace troupe::rlhf {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Occurrences of `needle` in `text` (non-overlapping).
size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// The text after the single occurrence of `open`, up to `close` (empty close: to the end), when what follows
// `close` is only whitespace.
std::optional<std::string> single_tail(const std::string& response, const std::string& open, const std::string& close) {
  if (open.empty() || count_of(response, open) != 1) return std::nullopt;
  const size_t begin = response.find(open) + open.size();
  size_t end = response.size();
  if (!close.empty()) {
    end = response.find(close, begin);
    if (end == std::string::npos) return std::nullopt;
    for (size_t i = end + close.size(); i < response.size(); ++i) {
      if (!is_space(response[i])) return std::nullopt;
    }
  }
  return trim(response.substr(begin, end - begin));
}

}  // namespace

std::optional<std::string> canonical_number(const std::string& text) {
  size_t i = 0;
  const size_t n = text.size();
  bool negative = false;
  if (i < n && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  // Integer part: digits, optionally grouped by commas in threes after the first group.
  std::string integer;
  size_t group = 0;  // digits since the last comma
  bool saw_comma = false;
  while (i < n && (is_digit(text[i]) || text[i] == ',')) {
    if (text[i] == ',') {
      if (integer.empty() || (saw_comma && group != 3) || (!saw_comma && group > 3)) return std::nullopt;
      saw_comma = true;
      group = 0;
    } else {
      integer += text[i];
      ++group;
    }
    ++i;
  }
  if (saw_comma && group != 3) return std::nullopt;
  std::string fraction;
  bool point = false;
  if (i < n && text[i] == '.') {
    point = true;
    ++i;
    while (i < n && is_digit(text[i])) fraction += text[i++];
  }
  if (i != n || (integer.empty() && fraction.empty())) return std::nullopt;
  (void)point;
  const size_t first = integer.find_first_not_of('0');
  integer = first == std::string::npos ? "0" : integer.substr(first);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  std::string out = integer;
  if (!fraction.empty()) out += "." + fraction;
  if (negative && out != "0") out = "-" + out;
  return out;
}

std::optional<std::string> extract_answer(const std::string& response, AnswerFormat format, const std::string& marker) {
  std::optional<std::string> answer;
  switch (format) {
    case AnswerFormat::kBare: answer = trim(response); break;
    case AnswerFormat::kMarker: answer = single_tail(response, marker, ""); break;
    case AnswerFormat::kBoxed: answer = single_tail(response, "\\boxed{", "}"); break;
  }
  if (!answer || !canonical_number(*answer)) return std::nullopt;
  return answer;
}

double verify_format(const std::string& response, bool ended_with_eos, const VerifierOptions& o) {
  if (o.require_eos && !ended_with_eos) return 0.0;
  return extract_answer(response, o.format, o.marker) ? 1.0 : 0.0;
}

double verify_answer(const std::string& response, bool ended_with_eos, const std::string& reference,
                     const VerifierOptions& o) {
  const auto want = canonical_number(reference);
  if (!want) throw DataError("verify_answer: the reference answer '" + reference + "' is not a number");
  if (o.require_eos && !ended_with_eos) return 0.0;
  const auto got = extract_answer(response, o.format, o.marker);
  return got && canonical_number(*got) == want ? 1.0 : 0.0;
}

void load_reference_answers(const std::string& path, const std::string& prompt_field, const std::string& answer_field,
                            std::map<std::string, std::string>& answers,
                            const tokenizers::ChatTemplate* chat_template) {
  int64_t rows = 0;
  data::for_each_jsonl_ordered(
      path, "reference answers", [&](const nlohmann::ordered_json& j, const std::string& where, int64_t) {
        const std::string prompt =
            data::prompt_of_line(j, prompt_field, chat_template, "prompts.chat_template", where).text;
        if (!j.contains(answer_field) || !(j[answer_field].is_string() || j[answer_field].is_number()))
          throw DataError(where + ": expected a field '" + answer_field +
                          "' holding the answer (a string or a number)");
        const std::string answer =
            j[answer_field].is_string() ? j[answer_field].get<std::string>() : j[answer_field].dump();
        if (!canonical_number(answer)) throw DataError(where + ": answer '" + answer + "' is not a number");
        const auto [it, inserted] = answers.emplace(prompt, answer);
        if (!inserted && canonical_number(it->second) != canonical_number(answer))
          throw DataError(where + ": prompt listed again with a different answer (" + it->second + " vs " + answer +
                          ")");
        ++rows;
        return true;
      });
  if (rows == 0) throw DataError(path + ": no reference answers");
}

std::map<std::string, std::string> load_reference_answers(const std::string& path, const std::string& prompt_field,
                                                          const std::string& answer_field,
                                                          const tokenizers::ChatTemplate* chat_template) {
  std::map<std::string, std::string> answers;
  load_reference_answers(path, prompt_field, answer_field, answers, chat_template);
  return answers;
}

}  // namespace troupe::rlhf
