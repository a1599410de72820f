// Implementation of data/arithmetic.h.
#include "data/arithmetic.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/errors.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::data {

namespace fs = std::filesystem;

namespace {

void check(const ArithmeticOptions& o) {
  if (o.digits < 1 || o.digits > 9)
    throw ConfigError("arithmetic: digits = " + std::to_string(o.digits) + ": expected 1..9");
  if (o.ops.empty()) throw ConfigError("arithmetic: ops is empty: expected some of + - *");
  for (char c : o.ops) {
    if (c != '+' && c != '-' && c != '*')
      throw ConfigError(std::string("arithmetic: operator '") + c + "': expected some of + - *");
  }
  if (o.sft_count < 0 || o.prompt_count < 0 || o.test_count < 0) throw ConfigError("arithmetic: counts must be >= 0");
  if (!(o.sft_error_rate >= 0 && o.sft_error_rate <= 1))
    throw ConfigError("arithmetic: sft_error_rate must be in [0, 1]");
  if (!(o.working_rate >= 0 && o.working_rate <= 1)) throw ConfigError("arithmetic: working_rate must be in [0, 1]");
  if (!(o.ramble_rate >= 0 && o.ramble_rate <= 1)) throw ConfigError("arithmetic: ramble_rate must be in [0, 1]");
}

int64_t apply(char op, int64_t a, int64_t b) { return op == '+' ? a + b : op == '-' ? a - b : a * b; }

}  // namespace

std::string arithmetic_working(const std::string& prompt, int path) {
  const auto bad = [&] {
    return ConfigError("arithmetic_working: '" + prompt + "' is not of the form a+b=, a-b= or a*b=");
  };
  const size_t op_at = prompt.find_first_of("+-*", 1);
  if (op_at == std::string::npos || prompt.size() < op_at + 3 || prompt.back() != '=') throw bad();
  const std::string a_text = prompt.substr(0, op_at), b_text = prompt.substr(op_at + 1, prompt.size() - op_at - 2);
  const auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 9 && t.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(a_text) || !digits(b_text)) throw bad();
  const char op = prompt[op_at];
  if (path < 0 || path >= (op == '-' ? 2 : 4)) {
    throw ConfigError("arithmetic_working: path " + std::to_string(path) + " of '" + prompt + "' (it has " +
                      std::to_string(op == '-' ? 2 : 4) + ")");
  }
  int64_t a = std::stoll(a_text), b = std::stoll(b_text);
  if (path >= 2) std::swap(a, b);  // + and * commute
  std::vector<int64_t> places;     // b's non-zero decimal places, ones first (paths 1 and 3: largest first)
  for (int64_t rest = b, scale = 1; rest > 0; rest /= 10, scale *= 10) {
    if (rest % 10 != 0) places.push_back((rest % 10) * scale);
  }
  if (places.empty()) places.push_back(0);
  if (path % 2 == 1) std::reverse(places.begin(), places.end());
  std::string out;
  const auto step = [&](int64_t x, char o, int64_t y) {
    if (!out.empty()) out += ' ';
    out += std::to_string(x) + o + std::to_string(y) + "=" + std::to_string(apply(o, x, y));
    return apply(o, x, y);
  };
  if (op == '*') {
    std::vector<int64_t> partial;
    for (int64_t p : places) partial.push_back(step(a, '*', p));
    int64_t sum = partial.front();
    for (size_t i = 1; i < partial.size(); ++i) sum = step(sum, '+', partial[i]);
  } else {
    int64_t value = a;
    for (int64_t p : places) value = step(value, op, p);
  }
  return out;
}

int arithmetic_working_paths(const std::string& prompt) {
  const size_t op_at = prompt.find_first_of("+-*", 1);
  if (op_at == std::string::npos) {
    throw ConfigError("arithmetic_working: '" + prompt + "' is not of the form a+b=, a-b= or a*b=");
  }
  return prompt[op_at] == '-' ? 2 : 4;
}

std::vector<ArithmeticProblem> draw_arithmetic_problems(const ArithmeticOptions& o, int64_t count, uint64_t stream,
                                                        const std::vector<std::string>& exclude) {
  check(o);
  const auto bound = static_cast<int64_t>(std::pow(10.0, static_cast<double>(o.digits)));
  const double space = static_cast<double>(bound) * static_cast<double>(bound) * static_cast<double>(o.ops.size());
  if (static_cast<double>(count + static_cast<int64_t>(exclude.size())) > 0.5 * space) {
    throw ConfigError("arithmetic: " + std::to_string(count) + " problems asked but " + std::to_string(o.digits) +
                      "-digit operands with '" + o.ops + "' give only " + std::to_string(static_cast<int64_t>(space)) +
                      " (at most half can be drawn)");
  }
  std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ULL + stream);
  std::uniform_int_distribution<int64_t> operand(0, bound - 1);
  std::uniform_int_distribution<size_t> pick(0, o.ops.size() - 1);
  std::set<std::string> seen(exclude.begin(), exclude.end());
  std::vector<ArithmeticProblem> out;
  while (static_cast<int64_t>(out.size()) < count) {
    const int64_t a = operand(rng), b = operand(rng);
    const char op = o.ops[pick(rng)];
    std::string prompt = std::to_string(a) + op + std::to_string(b) + "=";
    if (!seen.insert(prompt).second) continue;
    out.push_back({std::move(prompt), std::to_string(apply(op, a, b))});
  }
  return out;
}

ArithmeticTaskFiles write_arithmetic_task(const fs::path& dir, const ArithmeticOptions& o) {
  check(o);
  fs::create_directories(dir);
  ArithmeticTaskFiles files{dir / "tokenizer.json", dir / "sft.jsonl", dir / "prompts.jsonl", dir / "test.jsonl"};

  // Byte-level, no merges: every character is one token; <|endoftext|> ends a response.
  tokenizers::TokenizerFile tok;
  for (int b = 0; b < 256; ++b) tok.spec.tokens_by_rank.emplace_back(1, static_cast<char>(b));
  tok.spec.pattern = R"([\s\S])";
  tok.spec.special_tokens["<|endoftext|>"] = 256;
  tok.spec.name = "arithmetic-bytes";
  tok.metadata["task"] = "arithmetic digits=" + std::to_string(o.digits) + " ops=" + o.ops;
  tokenizers::save_tokenizer_file(files.tokenizer, tok);

  const auto test = draw_arithmetic_problems(o, o.test_count, 1, {});
  std::vector<std::string> held_out;
  for (const auto& p : test) held_out.push_back(p.prompt);
  const auto train = draw_arithmetic_problems(o, std::max(o.sft_count, o.prompt_count), 2, held_out);

  const auto write = [](const fs::path& path, const auto& rows) {
    std::ofstream f(path);
    if (!f) throw IoError("cannot write " + path.string());
    for (const nlohmann::json& j : rows) f << j.dump() << "\n";
    if (!f) throw IoError("cannot write " + path.string());
  };
  std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ULL + 3);
  std::bernoulli_distribution wrong(o.sft_error_rate);
  std::mt19937_64 working_rng(o.seed * 0x9e3779b97f4a7c15ULL + 4);  // its own stream: the answers stay as without
  std::bernoulli_distribution show_working(o.working_rate);
  std::mt19937_64 ramble_rng(o.seed * 0x9e3779b97f4a7c15ULL + 5);
  std::bernoulli_distribution ramble(o.ramble_rate);
  std::mt19937_64 path_rng(o.seed * 0x9e3779b97f4a7c15ULL + 6);
  std::vector<nlohmann::json> sft, prompts, tests;
  for (int64_t i = 0; i < o.sft_count; ++i) {
    const auto& p = train[static_cast<size_t>(i)];
    // A wrong answer is off by one in its last digit: well-formed, so only the verifier can tell.
    std::string response = p.answer;
    if (wrong(rng)) response = std::to_string(std::stoll(p.answer) + 1);
    if (o.working_rate > 0) {
      const bool working = show_working(working_rng);
      int path = 0;
      if (working && o.varied_working) {
        path = std::uniform_int_distribution<int>(0, arithmetic_working_paths(p.prompt) - 1)(path_rng);
      }
      response = (working ? arithmetic_working(p.prompt, path) + " " : std::string()) + "#### " + response;
    }
    if (o.ramble_rate > 0 && ramble(ramble_rng)) {
      const std::string working = arithmetic_working(p.prompt);
      response = working;
      for (int k = 1; k < 8; ++k) response += " " + working;
    }
    sft.push_back({{"prompt", p.prompt}, {"response", response}});
  }
  for (int64_t i = 0; i < o.prompt_count; ++i) {
    const auto& p = train[static_cast<size_t>(i)];
    prompts.push_back({{"prompt", p.prompt}, {"answer", p.answer}});
  }
  for (const auto& p : test) tests.push_back({{"prompt", p.prompt}, {"answer", p.answer}});
  write(files.sft, sft);
  write(files.prompts, prompts);
  write(files.test, tests);
  return files;
}

}  // namespace troupe::data
