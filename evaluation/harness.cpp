#include "evaluation/harness.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <set>

#include "core/errors.h"
#include "evaluation/doc_template.h"
#include "evaluation/loglikelihood.h"
#include "evaluation/py_random.h"
#include "metrics/text_metrics.h"
#include "metrics/unicode.h"
#include "models/generation.h"

namespace troupe::evaluation {
namespace {

using nlohmann::json;

// HF tokenizers turn special-token text into the special token; tiktoken-style encode() does that for the allowed.
std::vector<int64_t> encode(const tokenizers::BpeTokenizer& tok, const std::string& text) {
  std::set<std::string> specials;
  for (const auto& [name, id] : tok.spec().special_tokens) specials.insert(name);
  const std::vector<int> ids = tok.encode(text, specials);
  return {ids.begin(), ids.end()};
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

  std::string what(const std::string& key) const { return fmt::format("task {} ({}): {}", t_.name, t_.source.string(), key); }

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
    if (pool[static_cast<size_t>(i)] != *eval_doc && static_cast<int64_t>(out.size()) < n) out.push_back(&pool[static_cast<size_t>(i)]);
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
        const bool left = at == 0 || !(std::isalnum(static_cast<unsigned char>((*spec)[at - 1])) || (*spec)[at - 1] == '_');
        const size_t end = at + field.size();
        const bool right = end >= spec->size() || !(std::isalnum(static_cast<unsigned char>((*spec)[end])) || (*spec)[end] == '_');
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

size_t argmax(const std::vector<double>& v) { return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

}  // namespace

std::pair<std::vector<int64_t>, std::vector<int64_t>> encode_pair(const tokenizers::BpeTokenizer& tokenizer,
                                                                  const std::string& context,
                                                                  const std::string& continuation) {
  std::u32string ctx = metrics::decode_utf8(context, "context");
  size_t keep = ctx.size();
  while (keep > 0 && metrics::is_space(ctx[keep - 1])) --keep;
  const std::string moved = metrics::encode_utf8(std::u32string_view(ctx).substr(keep));
  const std::string head = metrics::encode_utf8(std::u32string_view(ctx).substr(0, keep));
  const std::vector<int64_t> whole = encode(tokenizer, head + moved + continuation);
  const std::vector<int64_t> context_enc = encode(tokenizer, head);
  return {context_enc, std::vector<int64_t>(whole.begin() + static_cast<int64_t>(std::min(context_enc.size(), whole.size())), whole.end())};
}

TaskResult run_task(const EvalModel& m, const TaskSpec& task, const HarnessOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  TaskDocs docs_of(task);
  std::vector<json> docs = load_documents(task.split_file(task.test_split));
  if (options.limit > 0 && static_cast<int64_t>(docs.size()) > options.limit) docs.resize(static_cast<size_t>(options.limit));
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
  auto context_ids = [&](const std::string& ctx, const std::string& cont) {
    if (ctx.empty()) return std::make_pair(std::vector<int64_t>{m.eot_id}, encode(m.tokenizer, cont));
    return encode_pair(m.tokenizer, ctx, cont);
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
          if (ex.continuations.empty()) throw DataError(fmt::format("task {}: document {} has no choices", task.name, i));
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
            throw ConfigError(fmt::format("{}: metric {} is not one of multiple_choice's (acc, acc_norm, acc_bytes, "
                                          "exact_match)", task.source.string(), name));
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
    for (size_t begin = 0; begin < docs.size(); begin += chunk) {
      const size_t end = std::min(docs.size(), begin + chunk);
      std::vector<std::vector<int64_t>> prompts;
      for (size_t i = begin; i < end; ++i) {
        std::vector<int64_t> ids = encode(m.tokenizer, result.examples[i].context);
        if (ids.empty()) ids = {m.eot_id};
        if (static_cast<int64_t>(ids.size()) > max_ctx) ids.erase(ids.begin(), ids.end() - max_ctx);
        prompts.push_back(std::move(ids));
      }
      models::GenerationConfig g;
      g.max_new_tokens = task.max_gen_toks;
      g.stop_tokens = {m.eot_id};
      g.pad_id = m.eot_id;
      g.stop_when = [&](size_t, const std::vector<int64_t>& tokens) {
        const std::string text = m.tokenizer.decode_lossy_utf8(std::vector<int>(tokens.begin(), tokens.end()));
        for (const auto& u : until) {
          if (!u.empty() && text.find(u) != std::string::npos) return true;
        }
        return false;
      };
      const models::GenerationOutput out = models::generate(m.model, prompts, g);
      for (size_t i = begin; i < end; ++i) {
        const auto& toks = out.tokens[i - begin];
        std::string text = m.tokenizer.decode_lossy_utf8(std::vector<int>(toks.begin(), toks.end()));
        for (const auto& u : until) {  // s = s.split(term)[0] for each term, in order
          if (u.empty()) continue;
          const size_t at = text.find(u);
          if (at != std::string::npos) text.resize(at);
        }
        result.examples[i].generation = text;
      }
      if (options.progress) options.progress(static_cast<int64_t>(end), static_cast<int64_t>(docs.size()));
    }
    std::vector<std::string> generations;
    std::vector<std::vector<std::string>> targets;
    for (size_t i = 0; i < docs.size(); ++i) {
      ExampleRecord& ex = result.examples[i];
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
      generations.push_back(ex.generation);
      targets.push_back(refs);
    }
    for (const auto& name : metric_names) {
      if (!metrics::is_text_metric(name)) {
        throw ConfigError(fmt::format("{}: metric {} is not a text metric ({})", task.source.string(), name,
                                      fmt::join(metrics::text_metric_names(), ", ")));
      }
      const metrics::TextMetricResult r = metrics::compute_text_metric(name, generations, targets);
      for (size_t i = 0; i < docs.size(); ++i) result.examples[i].values.emplace_back(name, r.per_example[i]);
      if (name == "exact_match") {
        add_mean(result, name, r.per_example);
      } else {
        for (const auto& [k, v] : r.values) result.metrics.push_back({k, v, -1});
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace troupe::evaluation
