#include "evaluation/harness.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>

#include "core/errors.h"
#include "evaluation/doc_template.h"
#include "evaluation/loglikelihood.h"
#include "evaluation/py_random.h"
#include "metrics/py_regex.h"
#include "metrics/text_metrics.h"
#include "metrics/unicode.h"
#include "models/generation.h"

namespace troupe::evaluation {
namespace {

using nlohmann::json;

// HF tokenizers turn special-token text into the special token; tiktoken-style encode() does that for the allowed.
std::set<std::string> special_texts(const tokenizers::BpeTokenizer& tok) {
  std::set<std::string> specials;
  for (const auto& [name, id] : tok.spec().special_tokens) specials.insert(name);
  return specials;
}

std::vector<int64_t> encode(const tokenizers::BpeTokenizer& tok, const std::set<std::string>& specials,
                            const std::string& text) {
  const std::vector<int> ids = tok.encode(text, specials);
  return {ids.begin(), ids.end()};
}

// lm-eval's _encode_pair with the tokenizer's special-token texts given.
std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair_with(const tokenizers::BpeTokenizer& tokenizer,
                                                                       const std::set<std::string>& specials,
                                                                       const std::string& context,
                                                                       const std::string& continuation) {
  std::u32string ctx = metrics::decode_utf8(context, "context");
  size_t keep = ctx.size();
  while (keep > 0 && metrics::is_space(ctx[keep - 1])) --keep;
  const std::string moved = metrics::encode_utf8(std::u32string_view(ctx).substr(keep));
  const std::string head = metrics::encode_utf8(std::u32string_view(ctx).substr(0, keep));
  const std::vector<int64_t> whole = encode(tokenizer, specials, head + moved + continuation);
  const std::vector<int64_t> context_enc = encode(tokenizer, specials, head);
  return {context_enc,
          std::vector<int64_t>(whole.begin() + static_cast<int64_t>(std::min(context_enc.size(), whole.size())),
                               whole.end())};
}

// Python's str() of a JSON scalar, as lm-eval's f-strings and str() print document values.
std::string py_str(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return v.dump();
}

class TaskDocs {
 public:
  TaskDocs(const TaskSpec& t) : t_(t) {}

  std::string text(const json& doc) const {
    const json v = resolve_doc_field(t_.doc_to_text, doc, what("doc_to_text"));
    if (!v.is_string()) throw DataError(fmt::format("{}: doc_to_text gave {}, expected text", t_.name, v.dump()));
    return v.get<std::string>();
  }

  bool has_choices() const { return !t_.doc_to_choice.empty() || !t_.choice_list.empty(); }

  std::vector<std::string> choices(const json& doc) const {
    if (!t_.choice_list.empty()) return t_.choice_list;
    json v = resolve_doc_field(t_.doc_to_choice, doc, what("doc_to_choice"));
    if (v.is_string()) v = parse_python_list(v.get<std::string>(), what("doc_to_choice"));
    if (!v.is_array()) throw DataError(fmt::format("{}: doc_to_choice gave {}, expected a list", t_.name, v.dump()));
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(py_str(c));
    return out;
  }

  // lm-eval's doc_to_target: a field's raw value, or the rendered template converted.
  json target(const json& doc) const {
    if (t_.doc_to_target.empty()) return json();
    const bool field = doc.contains(t_.doc_to_target);
    json v = resolve_doc_field(t_.doc_to_target, doc, what("doc_to_target"));
    if (!field && v.is_string()) {
      const std::string s = v.get<std::string>();
      const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (digits && has_choices()) return json(std::stoll(s));
      if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
        try {
          return parse_python_list(s, what("doc_to_target"));
        } catch (const DataError&) {
          return v;  // lm-eval keeps the string when literal_eval fails
        }
      }
    }
    return v;
  }

  // The answer text of a few-shot example (build_qa_turn).
  std::string answer_text(const json& a, const std::vector<std::string>& choices) const {
    if (a.is_number_integer() && !choices.empty()) {
      const auto i = a.get<int64_t>();
      if (i < 0 || i >= static_cast<int64_t>(choices.size())) {
        throw DataError(fmt::format("{}: target index {} outside {} choices", t_.name, i, choices.size()));
      }
      return choices[static_cast<size_t>(i)];
    }
    if (a.is_array()) {
      if (a.empty()) throw DataError(fmt::format("{}: an empty list of targets", t_.name));
      return py_str(a[0]);
    }
    if (!a.is_string()) throw DataError(fmt::format("{}: the answer {} is not text", t_.name, a.dump()));
    return a.get<std::string>();
  }

  std::string what(const std::string& key) const {
    return fmt::format("task {} ({}): {}", t_.name, t_.source.string(), key);
  }

 private:
  const TaskSpec& t_;
};

// Python's `x != doc` on dicts: JSON equality.
std::vector<const json*> draw_fewshot(PyRandom& rnd, const std::vector<json>& pool, const json* eval_doc, int64_t n) {
  std::vector<const json*> out;
  if (n == 0) return out;
  if (pool.empty()) throw DataError("few-shot examples requested, but the few-shot split has no documents");
  const auto size = static_cast<int64_t>(pool.size());
  if (!eval_doc) {
    for (int64_t i : rnd.sample(size, n)) out.push_back(&pool[static_cast<size_t>(i)]);
    return out;
  }
  for (int64_t i : rnd.sample(size, std::min(n + 1, size))) {
    if (pool[static_cast<size_t>(i)] != *eval_doc && static_cast<int64_t>(out.size()) < n)
      out.push_back(&pool[static_cast<size_t>(i)]);
  }
  if (static_cast<int64_t>(out.size()) < n) {
    std::vector<const json*> rest;
    for (const auto& d : pool) {
      if (d != *eval_doc) rest.push_back(&d);
    }
    out.clear();
    for (int64_t i : rnd.sample(static_cast<int64_t>(rest.size()), n)) out.push_back(rest[static_cast<size_t>(i)]);
  }
  return out;
}

void add_mean(TaskResult& r, const std::string& name, const std::vector<double>& values) {
  const auto n = static_cast<double>(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = values.empty() ? 0.0 : sum / n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  const double stderr_of_mean = values.size() > 1 ? std::sqrt(var / (n - 1)) / std::sqrt(n) : -1.0;
  r.metrics.push_back({name, mean, stderr_of_mean});
}

// The document with its input fields perturbed: every string field that the target and choice specs do not name
// (so answers stay intact and the prompt template's own words are untouched).
json perturb_document(const json& doc, const TaskSpec& task, const Perturbation& p, size_t index) {
  json out = doc;
  auto named = [&](const std::string& field) {
    for (const std::string* spec : {&task.doc_to_target, &task.doc_to_choice}) {
      if (*spec == field) return true;
      size_t at = spec->find(field);
      while (at != std::string::npos) {  // a whole identifier inside a template
        const bool left =
            at == 0 || !(std::isalnum(static_cast<unsigned char>((*spec)[at - 1])) || (*spec)[at - 1] == '_');
        const size_t end = at + field.size();
        const bool right =
            end >= spec->size() || !(std::isalnum(static_cast<unsigned char>((*spec)[end])) || (*spec)[end] == '_');
        if (left && right) return true;
        at = spec->find(field, at + 1);
      }
    }
    return false;
  };
  for (auto& [key, value] : out.items()) {
    if (value.is_string() && !named(key)) value = perturb_text(value.get<std::string>(), p, index);
  }
  return out;
}

size_t argmax(const std::vector<double>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// The seed of a sampled response: SplitMix64 over (seed, document, repeat), so it depends on nothing else.
uint64_t sample_seed(uint64_t seed, size_t document, int64_t repeat) {
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ static_cast<uint64_t>(document)) ^ static_cast<uint64_t>(repeat));
}

// A filter pipeline with its regular expressions compiled (task.h's FilterStep says what each step does).
class CompiledPipeline {
 public:
  CompiledPipeline(const FilterPipeline& p, const TaskSpec& task) : p_(p), task_(task.name) {
    for (const auto& step : p.steps) {
      regexes_.push_back(step.function == "regex" ? std::make_unique<metrics::PyRegex>(step.regex_pattern) : nullptr);
    }
  }

  ExampleRecord::Filtered apply(std::vector<std::string> resps) const {
    ExampleRecord::Filtered out;
    out.pipeline = p_.name;
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const FilterStep& step = p_.steps[s];
      if (step.function == "regex") {
        for (auto& r : resps) r = extract(*regexes_[s], step, r);
      } else if (step.function == "take_first_k") {
        resps.resize(std::min(resps.size(), static_cast<size_t>(step.k)));
      } else if (step.function == "majority_vote") {
        // collections.Counter(resps).most_common(1): the highest count, the earliest first appearance on a tie.
        std::vector<std::pair<std::string, int64_t>> counts;
        for (const auto& r : resps) {
          auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == r; });
          if (it == counts.end()) {
            counts.emplace_back(r, 1);
          } else {
            ++it->second;
          }
        }
        auto best = counts.begin();
        for (auto it = counts.begin(); it != counts.end(); ++it) {
          if (it->second > best->second) best = it;
        }
        out.vote_share = static_cast<double>(best->second) / static_cast<double>(resps.size());
        resps = {best->first};
      } else if (step.function == "remove_whitespace") {
        for (auto& r : resps) r = metrics::strip(r);
      } else if (step.function == "lowercase") {
        for (auto& r : resps) r = metrics::lower(r);
      } else if (step.function == "take_first") {
        out.answer = resps.front();
      }
    }
    return out;
  }

 private:
  // RegexFilter: re.findall(pattern)[group_select]; of a tuple, its first non-empty group; stripped.
  std::string extract(const metrics::PyRegex& rx, const FilterStep& step, const std::string& resp) const {
    const auto found = rx.findall(resp);
    if (found.empty()) return step.fallback;
    const auto n = static_cast<int64_t>(found.size());
    const int64_t at = step.group_select < 0 ? n + step.group_select : step.group_select;
    if (at < 0 || at >= n) {
      throw DataError(fmt::format("task {}: filter {}: group_select {} but the response has {} matches of '{}': {}",
                                  task_, p_.name, step.group_select, n, rx.pattern(), json(resp).dump()));
    }
    const auto& groups = found[static_cast<size_t>(at)];
    std::string match = step.fallback;
    for (const auto& g : groups) {
      if (!g.empty()) {
        match = g;
        break;
      }
    }
    if (groups.size() == 1) match = groups[0];  // a lone group (or the whole match) is taken even when empty
    return metrics::strip(match);
  }

  const FilterPipeline& p_;
  std::string task_;
  std::vector<std::unique_ptr<metrics::PyRegex>> regexes_;
};

// exact_match's normalisation (task.h's ExactMatchOptions), lm-eval's exact_match_hf_evaluate.
class ExactMatchNormaliser {
 public:
  explicit ExactMatchNormaliser(const ExactMatchOptions& o) : o_(o) {
    for (const auto& r : o.regexes_to_ignore) regexes_.emplace_back(r);
  }
  bool active() const { return o_.ignore_case || o_.ignore_punctuation || o_.ignore_numbers || !regexes_.empty(); }
  std::string operator()(std::string s) const {
    for (const auto& rx : regexes_) s = rx.remove_all(s);
    if (o_.ignore_case) s = metrics::lower(s);
    auto drop = [&](const char* set) {
      s.erase(std::remove_if(s.begin(), s.end(), [&](char c) { return c != 0 && std::strchr(set, c); }), s.end());
    };
    if (o_.ignore_punctuation) drop("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");  // string.punctuation
    if (o_.ignore_numbers) drop("0123456789");
    return s;
  }

 private:
  ExactMatchOptions o_;
  std::vector<metrics::PyRegex> regexes_;
};

}  // namespace

std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const tokenizers::BpeTokenizer& tokenizer,
                                                                  const std::string& context,
                                                                  const std::string& continuation) {
  return encode_pair_with(tokenizer, special_texts(tokenizer), context, continuation);
}

TaskResult run_task(const EvalModel& m, const TaskSpec& task, const HarnessOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  TaskDocs docs_of(task);
  std::vector<json> docs = load_documents(task.split_file(task.test_split));
  if (options.limit > 0 && static_cast<int64_t>(docs.size()) > options.limit)
    docs.resize(static_cast<size_t>(options.limit));
  const int64_t shots = options.num_fewshot >= 0 ? options.num_fewshot : task.num_fewshot;
  const std::string fewshot_split = task.fewshot_source();
  // lm-eval leaves the document out of its own examples only when fewshot_split names the test split; a task with no
  // other split draws from the test documents, the document itself included.
  const bool same_split = !task.fewshot_split.empty() && task.fewshot_split == task.test_split;
  std::vector<json> pool;
  if (shots > 0) pool = load_documents(task.split_file(fewshot_split));
  PyRandom rnd(options.fewshot_seed);

  TaskResult result;
  result.task = task.name;
  if (options.perturbation) result.perturbation = options.perturbation->label();
  result.output_type = output_type_name(task.output_type);
  result.num_fewshot = shots;
  result.documents = static_cast<int64_t>(docs.size());
  result.examples.resize(docs.size());

  // Contexts, in document order (the few-shot generator is consumed in that order, as lm-eval's).
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string ctx = task.description;
    for (const json* fs : draw_fewshot(rnd, pool, same_split ? &docs[i] : nullptr, shots)) {
      const std::vector<std::string> c = docs_of.has_choices() ? docs_of.choices(*fs) : std::vector<std::string>{};
      const json a = docs_of.target(*fs);
      const bool has_answer = !a.is_null() && !(a.is_string() && a.get<std::string>().empty());
      ctx += docs_of.text(*fs);
      if (has_answer) ctx += task.target_delimiter + docs_of.answer_text(a, c) + task.fewshot_delimiter;
    }
    ctx += docs_of.text(options.perturbation ? perturb_document(docs[i], task, *options.perturbation, i) : docs[i]);
    result.examples[i].doc_id = static_cast<int64_t>(i);
    result.examples[i].context = ctx;
  }

  std::vector<std::string> metric_names = task.metrics;
  if (metric_names.empty()) {
    if (task.output_type == OutputType::kMultipleChoice) metric_names = {"acc", "acc_norm"};
    if (task.output_type == OutputType::kLoglikelihood) metric_names = {"perplexity", "acc"};
    if (task.output_type == OutputType::kGenerateUntil) metric_names = {"exact_match"};
  }
  const std::set<std::string> specials = special_texts(m.tokenizer);
  auto context_ids = [&](const std::string& ctx, const std::string& cont) {
    if (ctx.empty()) return std::make_pair(std::vector<int64_t>{m.eot_id}, encode(m.tokenizer, specials, cont));
    return encode_pair_with(m.tokenizer, specials, ctx, cont);
  };
  const auto chunk = static_cast<size_t>(std::max<int64_t>(1, options.batch_size));

  if (task.output_type == OutputType::kMultipleChoice || task.output_type == OutputType::kLoglikelihood) {
    for (size_t begin = 0; begin < docs.size(); begin += chunk) {
      const size_t end = std::min(docs.size(), begin + chunk);
      std::vector<ContinuationRequest> requests;
      for (size_t i = begin; i < end; ++i) {
        ExampleRecord& ex = result.examples[i];
        if (task.output_type == OutputType::kMultipleChoice) {
          for (const auto& c : docs_of.choices(docs[i])) ex.continuations.push_back(task.target_delimiter + c);
          if (ex.continuations.empty())
            throw DataError(fmt::format("task {}: document {} has no choices", task.name, i));
        } else {
          const json t = docs_of.target(docs[i]);
          ex.target = docs_of.answer_text(t, {});
          ex.continuations.push_back(ex.target);  // lm-eval: (context, target), no delimiter
        }
        for (const auto& cont : ex.continuations) {
          auto [c, k] = context_ids(ex.context, cont);
          requests.push_back({std::move(c), std::move(k)});
        }
      }
      const auto scores = score_continuations(m.model, requests, options.batch_size);
      size_t next = 0;
      for (size_t i = begin; i < end; ++i) {
        ExampleRecord& ex = result.examples[i];
        for (size_t c = 0; c < ex.continuations.size(); ++c, ++next) {
          ex.loglikelihoods.push_back(scores[next].logprob);
          ex.greedy.push_back(scores[next].is_greedy);
        }
      }
      if (options.progress) options.progress(static_cast<int64_t>(end), static_cast<int64_t>(docs.size()));
    }
    for (size_t i = 0; i < docs.size(); ++i) {
      ExampleRecord& ex = result.examples[i];
      if (task.output_type == OutputType::kMultipleChoice) {
        const std::vector<std::string> choices = docs_of.choices(docs[i]);
        const json gold = docs_of.target(docs[i]);
        int64_t g = -100;
        if (gold.is_number_integer()) {
          g = gold.get<int64_t>() < static_cast<int64_t>(choices.size()) ? gold.get<int64_t>() : -100;
        } else if (gold.is_string()) {
          const auto it = std::find(choices.begin(), choices.end(), gold.get<std::string>());
          if (it != choices.end()) g = it - choices.begin();
        } else {
          throw DataError(fmt::format("task {}: document {}: target {} is neither an index nor a choice", task.name, i,
                                      gold.dump()));
        }
        ex.gold = g;
        std::vector<double> per_char, per_byte;
        for (size_t c = 0; c < choices.size(); ++c) {
          per_char.push_back(ex.loglikelihoods[c] / static_cast<double>(metrics::decode_utf8(choices[c]).size()));
          per_byte.push_back(ex.loglikelihoods[c] / static_cast<double>(choices[c].size()));
        }
        for (const auto& name : metric_names) {
          if (name == "acc") {
            ex.values.emplace_back(name, static_cast<int64_t>(argmax(ex.loglikelihoods)) == g ? 1.0 : 0.0);
          } else if (name == "acc_norm") {
            ex.values.emplace_back(name, static_cast<int64_t>(argmax(per_char)) == g ? 1.0 : 0.0);
          } else if (name == "acc_bytes") {
            ex.values.emplace_back(name, static_cast<int64_t>(argmax(per_byte)) == g ? 1.0 : 0.0);
          } else if (name == "exact_match") {
            ex.values.emplace_back(name, g >= 0 && ex.greedy[static_cast<size_t>(g)] ? 1.0 : 0.0);
          } else {
            throw ConfigError(
                fmt::format("{}: metric {} is not one of multiple_choice's (acc, acc_norm, acc_bytes, "
                            "exact_match)",
                            task.source.string(), name));
          }
        }
      } else {
        for (const auto& name : metric_names) {
          if (name == "perplexity") {
            ex.values.emplace_back(name, ex.loglikelihoods[0]);
          } else if (name == "acc") {
            ex.values.emplace_back(name, ex.greedy[0] ? 1.0 : 0.0);
          } else {
            throw ConfigError(fmt::format("{}: metric {} is not one of loglikelihood's (perplexity, acc)",
                                          task.source.string(), name));
          }
        }
      }
    }
    for (size_t k = 0; k < metric_names.size(); ++k) {
      std::vector<double> v;
      for (const auto& ex : result.examples) v.push_back(ex.values[k].second);
      if (metric_names[k] == "perplexity") {
        double sum = 0;
        for (double x : v) sum += x;
        result.metrics.push_back({"perplexity", std::exp(-sum / static_cast<double>(v.size())), -1});
      } else {
        add_mean(result, metric_names[k], v);
      }
    }
  } else {  // generate_until
    const int64_t block = m.model->config().block_size;
    const int64_t max_ctx = block - task.max_gen_toks;
    if (max_ctx < 1) {
      throw ConfigError(fmt::format("{}: max_gen_toks {} leaves no room for a context in the model's {} positions",
                                    task.source.string(), task.max_gen_toks, block));
    }
    std::vector<std::string> until = task.until;
    const std::string eot_text = m.tokenizer.decode({static_cast<int>(m.eot_id)});
    if (std::find(until.begin(), until.end(), eot_text) == until.end()) until.push_back(eot_text);
    // Rows are (document, repeat); greedy repeats are one generation copied (they would be equal).
    const int64_t repeats = task.repeats;
    const int64_t drawn = task.do_sample ? repeats : 1;
    std::vector<std::pair<size_t, int64_t>> rows;
    for (size_t i = 0; i < docs.size(); ++i) {
      for (int64_t r = 0; r < drawn; ++r) rows.emplace_back(i, r);
      result.examples[i].generations.resize(static_cast<size_t>(repeats));
    }
    std::vector<std::vector<int64_t>> doc_prompts(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      std::vector<int64_t> ids = encode(m.tokenizer, specials, result.examples[i].context);
      if (ids.empty()) ids = {m.eot_id};
      if (static_cast<int64_t>(ids.size()) > max_ctx) ids.erase(ids.begin(), ids.end() - max_ctx);
      doc_prompts[i] = std::move(ids);
    }
    for (size_t begin = 0; begin < rows.size(); begin += chunk) {
      const size_t end = std::min(rows.size(), begin + chunk);
      std::vector<std::vector<int64_t>> prompts;
      models::GenerationConfig g;
      g.max_new_tokens = task.max_gen_toks;
      g.stop_tokens = {m.eot_id};
      g.pad_id = m.eot_id;
      if (task.do_sample) {
        g.do_sample = true;
        g.temperature = task.temperature;
        g.top_k = task.top_k;
        g.top_p = task.top_p;
      }
      for (size_t k = begin; k < end; ++k) {
        prompts.push_back(doc_prompts[rows[k].first]);
        if (task.do_sample) g.row_seeds.push_back(sample_seed(options.seed, rows[k].first, rows[k].second));
      }
      g.stop_when = [&](size_t, const std::vector<int64_t>& tokens) {
        const std::string text = m.tokenizer.decode_lossy_utf8(std::vector<int>(tokens.begin(), tokens.end()));
        for (const auto& u : until) {
          if (!u.empty() && text.find(u) != std::string::npos) return true;
        }
        return false;
      };
      const models::GenerationOutput out = models::generate(m.model, prompts, g);
      for (size_t k = begin; k < end; ++k) {
        const auto& toks = out.tokens[k - begin];
        std::string text = m.tokenizer.decode_lossy_utf8(std::vector<int>(toks.begin(), toks.end()));
        for (const auto& u : until) {  // s = s.split(term)[0] for each term, in order
          if (u.empty()) continue;
          const size_t at = text.find(u);
          if (at != std::string::npos) text.resize(at);
        }
        auto& gens = result.examples[rows[k].first].generations;
        if (task.do_sample) {
          gens[static_cast<size_t>(rows[k].second)] = std::move(text);
        } else {
          std::fill(gens.begin(), gens.end(), text);
        }
      }
      if (options.progress) {
        const int64_t done = end == rows.size() ? static_cast<int64_t>(docs.size()) : static_cast<int64_t>(end) / drawn;
        options.progress(done, static_cast<int64_t>(docs.size()));
      }
    }
    std::vector<std::vector<std::string>> targets;
    for (size_t i = 0; i < docs.size(); ++i) {
      ExampleRecord& ex = result.examples[i];
      ex.generation = ex.generations.front();
      const json t = docs_of.target(docs[i]);
      std::vector<std::string> refs;
      if (docs_of.has_choices() && t.is_number_integer()) {
        refs = {docs_of.answer_text(t, docs_of.choices(docs[i]))};
      } else if (t.is_array()) {
        for (const auto& x : t) refs.push_back(py_str(x));
      } else {
        refs = {py_str(t)};
      }
      ex.target = refs.front();
      targets.push_back(refs);
    }
    // Answer extraction: each pipeline over each document's responses.
    const bool named = !task.filters.empty();
    const std::vector<FilterPipeline> pipelines =
        named ? task.filters : std::vector<FilterPipeline>{FilterPipeline{"none", {FilterStep{"take_first"}}}};
    const ExactMatchNormaliser em(task.exact_match);
    std::vector<std::vector<std::string>> em_targets = targets;  // exact_match's references, normalised once
    if (em.active()) {
      for (auto& refs : em_targets) {
        for (auto& r : refs) r = em(r);
      }
    }
    for (const auto& pipeline : pipelines) {
      const CompiledPipeline compiled(pipeline, task);
      std::vector<std::string> answers;
      std::vector<double> shares;
      for (auto& ex : result.examples) {
        ex.filtered.push_back(compiled.apply(ex.generations));
        answers.push_back(ex.filtered.back().answer);
        shares.push_back(ex.filtered.back().vote_share);
      }
      const std::string suffix = named ? "," + pipeline.name : "";
      for (const auto& name : metric_names) {
        if (!metrics::is_text_metric(name)) {
          throw ConfigError(fmt::format("{}: metric {} is not a text metric ({})", task.source.string(), name,
                                        fmt::join(metrics::text_metric_names(), ", ")));
        }
        const bool normalise = name == "exact_match" && em.active();
        std::vector<std::string> normalised;
        if (normalise) {
          for (const auto& a : answers) normalised.push_back(em(a));
        }
        const metrics::TextMetricResult r =
            metrics::compute_text_metric(name, normalise ? normalised : answers, normalise ? em_targets : targets);
        for (size_t i = 0; i < docs.size(); ++i)
          result.examples[i].values.emplace_back(name + suffix, r.per_example[i]);
        if (name == "exact_match") {
          add_mean(result, name + suffix, r.per_example);
        } else {
          for (const auto& [k, v] : r.values) result.metrics.push_back({k + suffix, v, -1});
        }
      }
      if (pipeline.votes()) {
        for (size_t i = 0; i < docs.size(); ++i)
          result.examples[i].values.emplace_back("vote_share" + suffix, shares[i]);
        add_mean(result, "vote_share" + suffix, shares);
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace troupe::evaluation
