// The evaluation harness against lm-evaluation-harness itself (tests/evaluation/lm_eval_reference.py runs
// lm_eval.simple_evaluate in the test on the same Hugging Face GPT-2 directory and the same task YAML files):
// every example's context (few-shot draw, description, delimiters), continuations, log-likelihoods, greedy flags,
// generations and metric values, and the aggregates with their standard errors.
#include "evaluation/harness.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "evaluation/doc_template.h"
#include "metrics/py_regex.h"
#include "models/gpt_checkpoint.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::evaluation {
namespace {

using nlohmann::json;

struct LmEvalRun {
  testing::ScratchDir dir{"troupe-harness"};
  json ref;
  models::Gpt model{nullptr};
  std::unique_ptr<tokenizers::BpeTokenizer> tok;
  int64_t eot = -1;
};

LmEvalRun& lm_eval_run() {
  static LmEvalRun* run = [] {
    auto* r = new LmEvalRun;
    const auto result =
        testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/evaluation/lm_eval_reference.py").string(),
                              r->dir.path().string()},
                             std::chrono::seconds(600), {"HF_DATASETS_OFFLINE=1", "HF_HUB_OFFLINE=1"});
    if (result.exit_code != 0) throw std::runtime_error("lm_eval_reference.py failed:\n" + result.output);
    r->ref = json::parse(testing::read_file(r->dir / "reference.json"));
    r->model = models::load_pretrained_gpt(r->dir / "hf");
    r->tok =
        std::make_unique<tokenizers::BpeTokenizer>(tokenizers::open_tokenizer((r->dir / "hf/tokenizer.json").string()));
    r->eot = r->tok->spec().special_tokens.at("<|endoftext|>");
    return r;
  }();
  return *run;
}

TaskResult run(LmEvalRun& r, const std::string& yaml, int64_t batch) {
  HarnessOptions o;
  o.batch_size = batch;
  return run_task({r.model, *r.tok, r.eot}, load_task(r.dir / yaml), o);
}

void expect_aggregates(const TaskResult& ours, const json& theirs) {
  for (const auto& m : ours.metrics) {
    // METRIC,PIPELINE as lm-eval names it; without a filter_list lm-eval's pipeline is "none". vote_share is ours.
    const size_t comma = m.name.find(',');
    const std::string metric = m.name.substr(0, comma);
    const std::string pipeline = comma == std::string::npos ? "none" : m.name.substr(comma + 1);
    if (metric == "vote_share") continue;
    const std::string key = metric + "," + pipeline;
    ASSERT_TRUE(theirs.contains(key)) << m.name;
    const double want = theirs[key].get<double>();
    if (metric.find("perplexity") != std::string::npos && want > 0 && m.value > 0) {
      // exp of a mean log-likelihood: compared as that mean, with the log-likelihoods' relative tolerance (an
      // untrained model's perplexity is ~4e8, where fp32 summation order alone moves the value by 1e-6 of it)
      EXPECT_NEAR(std::log(m.value), std::log(want), 1e-6 * std::max(1.0, std::abs(std::log(want)))) << m.name;
    } else {
      EXPECT_NEAR(m.value, want, 1e-6 * std::max(1.0, std::abs(want))) << m.name;
    }
    if (m.stderr_of_mean >= 0) {
      EXPECT_NEAR(m.stderr_of_mean, theirs[metric + "_stderr," + pipeline].get<double>(), 1e-9) << m.name;
    }
  }
}

void expect_multiple_choice(LmEvalRun& r, const std::string& task, const std::string& yaml, int64_t shots) {
  const json& samples = r.ref["samples"][task];
  for (int64_t batch : {1, 7}) {
    const TaskResult res = run(r, yaml, batch);
    ASSERT_EQ(res.examples.size(), samples.size());
    EXPECT_EQ(res.num_fewshot, shots);
    for (size_t i = 0; i < samples.size(); ++i) {
      const ExampleRecord& ex = res.examples[i];
      const json& s = samples[i];
      ASSERT_EQ(ex.continuations.size(), s["arguments"].size());
      for (size_t c = 0; c < ex.continuations.size(); ++c) {
        ASSERT_EQ(ex.context, s["arguments"][c][0].get<std::string>()) << "doc " << i;  // few-shot draw included
        EXPECT_EQ(ex.continuations[c], s["arguments"][c][1].get<std::string>()) << "doc " << i;
        EXPECT_NEAR(ex.loglikelihoods[c], s["resps"][c][0].get<double>(), 2e-4) << "doc " << i << " choice " << c;
        EXPECT_EQ(ex.greedy[c], s["resps"][c][1].get<bool>()) << "doc " << i << " choice " << c;
      }
      EXPECT_EQ(ex.values[0].second, s["metrics"]["acc"].get<double>()) << "doc " << i;
      EXPECT_EQ(ex.values[1].second, s["metrics"]["acc_norm"].get<double>()) << "doc " << i;
    }
    expect_aggregates(res, r.ref["results"][task]);
  }
}

TEST(Harness, MultipleChoiceThreeShotEqualsLmEvaluationHarness) {
  expect_multiple_choice(lm_eval_run(), "troupe_mc", "mc.yaml", 3);
}

TEST(Harness, MultipleChoiceDrawingExamplesFromItsOwnSplitEqualsLmEvaluationHarness) {
  expect_multiple_choice(lm_eval_run(), "troupe_mc_self", "mc_self.yaml", 4);
}

TEST(Harness, GenerateUntilTwoShotWithStopStringsEqualsLmEvaluationHarness) {
  LmEvalRun& r = lm_eval_run();
  const json& samples = r.ref["samples"]["troupe_gen"];
  const TaskResult res = run(r, "gen.yaml", 5);
  ASSERT_EQ(res.examples.size(), samples.size());
  int cut = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(res.examples[i].context, samples[i]["arguments"][0][0].get<std::string>()) << "doc " << i;
    EXPECT_EQ(res.examples[i].generation, samples[i]["resps"][0].get<std::string>()) << "doc " << i;
    EXPECT_EQ(res.examples[i].values[0].second, samples[i]["metrics"]["exact_match"].get<double>()) << "doc " << i;
    cut += res.examples[i].generation.size() < 12;  // some stopped at "\n" or "?" (12 tokens are >= 12 bytes)
  }
  EXPECT_GT(cut, 0);
  expect_aggregates(res, r.ref["results"]["troupe_gen"]);
}

TEST(Harness, AnswerExtractionFiltersAndRepeatsEqualLmEvaluationHarness) {
  LmEvalRun& r = lm_eval_run();
  std::map<std::string, std::vector<json>> by_filter;
  for (const auto& s : r.ref["samples"]["troupe_cot"]) by_filter[s["filter"].get<std::string>()].push_back(s);
  ASSERT_EQ(by_filter.size(), 4u);
  const TaskResult res = run(r, "cot.yaml", 4);
  ASSERT_EQ(res.examples.size(), 16u);
  int fallbacks = 0, extracted = 0;
  for (size_t i = 0; i < res.examples.size(); ++i) {
    const ExampleRecord& ex = res.examples[i];
    ASSERT_EQ(ex.filtered.size(), 4u);
    const json& first = by_filter.begin()->second[i];
    EXPECT_EQ(json(ex.generations), first["all_resps"][0]) << "doc " << i;  // 3 repeats, greedy: all equal
    for (size_t f = 0; f < ex.filtered.size(); ++f) {
      const auto& ours = ex.filtered[f];
      const json& theirs = by_filter.at(ours.pipeline)[i];
      EXPECT_EQ(ours.answer, theirs["resps"][0].get<std::string>()) << ours.pipeline << " doc " << i;
      const std::string key = "exact_match," + ours.pipeline;
      const auto value =
          std::find_if(ex.values.begin(), ex.values.end(), [&](const auto& v) { return v.first == key; });
      ASSERT_NE(value, ex.values.end()) << key;
      EXPECT_EQ(value->second, theirs["metrics"]["exact_match"].get<double>()) << ours.pipeline << " doc " << i;
      (ours.answer == "[invalid]" ? fallbacks : extracted) += 1;
      EXPECT_EQ(ours.vote_share >= 0, ours.pipeline == "maj@2");
    }
  }
  EXPECT_GT(fallbacks, 8);
  EXPECT_GT(extracted, 16);
  expect_aggregates(res, r.ref["results"]["troupe_cot"]);
}

TEST(Harness, SampledRepeatsVoteWithAShareAndDoNotDependOnTheBatch) {
  LmEvalRun& r = lm_eval_run();
  std::string yaml = testing::read_file(r.dir / "cot.yaml");
  const std::string greedy = "  do_sample: false\n";
  ASSERT_NE(yaml.find(greedy), std::string::npos);
  yaml.replace(yaml.find(greedy), greedy.size(), "  do_sample: true\n  temperature: 1.0\n");
  yaml.replace(yaml.find("repeats: 3"), 10, "repeats: 5");
  testing::write_file(r.dir / "cot_sampled.yaml", yaml);
  const TaskResult a = run(r, "cot_sampled.yaml", 3);
  const TaskResult b = run(r, "cot_sampled.yaml", 7);
  const metrics::PyRegex word("(\\w+)");
  int distinct = 0;
  for (size_t i = 0; i < a.examples.size(); ++i) {
    ASSERT_EQ(a.examples[i].generations.size(), 5u);
    EXPECT_EQ(a.examples[i].generations, b.examples[i].generations) << "doc " << i;  // seeded per (doc, repeat)
    distinct += std::set<std::string>(a.examples[i].generations.begin(), a.examples[i].generations.end()).size() > 1;
    // maj@2 by hand: the first word of each of the first 2 responses ([invalid] without one), the most common.
    std::vector<std::string> votes;
    for (size_t k = 0; k < 2; ++k) {
      const auto found = word.findall(a.examples[i].generations[k]);
      votes.push_back(found.empty() ? "[invalid]" : found[0][0]);
    }
    const auto& maj = a.examples[i].filtered[3];
    ASSERT_EQ(maj.pipeline, "maj@2");
    EXPECT_EQ(maj.answer, votes[0]);  // a tie goes to the first seen
    EXPECT_DOUBLE_EQ(maj.vote_share, votes[0] == votes[1] ? 1.0 : 0.5);
  }
  EXPECT_GT(distinct, 12);  // at temperature 1 the repeats differ
  const auto share =
      std::find_if(a.metrics.begin(), a.metrics.end(), [](const auto& m) { return m.name == "vote_share,maj@2"; });
  ASSERT_NE(share, a.metrics.end());
  EXPECT_GE(share->value, 0.5);
  // Another seed draws other responses; a near-zero temperature gives the greedy response every time.
  HarnessOptions o;
  o.seed = 7;
  const TaskResult other = run_task({r.model, *r.tok, r.eot}, load_task(r.dir / "cot_sampled.yaml"), o);
  EXPECT_NE(other.examples[0].generations, a.examples[0].generations);
  yaml.replace(yaml.find("temperature: 1.0"), 16, "temperature: 1e-6");
  testing::write_file(r.dir / "cot_cold.yaml", yaml);
  const TaskResult cold = run(r, "cot_cold.yaml", 4);
  const TaskResult greedy_run = run(r, "cot.yaml", 4);
  for (size_t i = 0; i < cold.examples.size(); ++i) {
    for (const auto& g : cold.examples[i].generations) EXPECT_EQ(g, greedy_run.examples[i].generation) << "doc " << i;
  }
}

TEST(Harness, LoglikelihoodTaskEqualsLmEvaluationHarness) {
  LmEvalRun& r = lm_eval_run();
  const json& samples = r.ref["samples"]["troupe_ll"];
  const TaskResult res = run(r, "ll.yaml", 4);
  ASSERT_EQ(res.examples.size(), samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(res.examples[i].context, samples[i]["arguments"][0][0].get<std::string>());
    EXPECT_NEAR(res.examples[i].loglikelihoods[0], samples[i]["resps"][0][0].get<double>(), 2e-4);
  }
  expect_aggregates(res, r.ref["results"]["troupe_ll"]);
}

TEST(Harness, PerturbationChangesOnlyEachDocumentsInputText) {
  LmEvalRun& r = lm_eval_run();
  const TaskSpec task = load_task(r.dir / "mc.yaml");
  HarnessOptions o;
  const TaskResult clean = run_task({r.model, *r.tok, r.eot}, task, o);
  o.perturbation = Perturbation{"typos", 0.0, 1};
  EXPECT_EQ(run_task({r.model, *r.tok, r.eot}, task, o).examples[0].loglikelihoods, clean.examples[0].loglikelihoods);
  o.perturbation = Perturbation{"typos", 0.3, 1};
  const TaskResult typos = run_task({r.model, *r.tok, r.eot}, task, o);
  EXPECT_EQ(typos.perturbation, "typos:0.3");
  int changed = 0;
  for (size_t i = 0; i < clean.examples.size(); ++i) {
    const std::string& a = clean.examples[i].context;
    const std::string& b = typos.examples[i].context;
    const size_t last = a.rfind("Question: ");  // the few-shot examples before it are untouched
    EXPECT_EQ(b.substr(0, last), a.substr(0, last));
    EXPECT_EQ(b.substr(b.size() - 8), "\nAnswer:");                               // the template's own words too
    EXPECT_EQ(typos.examples[i].continuations, clean.examples[i].continuations);  // and the choices
    changed += a != b;
  }
  EXPECT_GT(changed, 20);
}

TEST(Harness, TaskFilesAreCheckedWithClearErrors) {
  testing::ScratchDir dir("troupe-task-errors");
  auto expect_error = [&](const std::string& yaml, const std::string& needle) {
    testing::write_file(dir / "t.yaml", yaml);
    try {
      load_task(dir / "t.yaml");
      ADD_FAILURE() << "no error for:\n" << yaml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string base = "task: t\ndataset_path: json\ndataset_kwargs: {data_files: {test: d.jsonl}}\n";
  expect_error(base + "output_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: a\n", "needs doc_to_choice");
  expect_error(base + "output_type: ranking\ndoc_to_text: q\n", "t.yaml:4");
  expect_error(base + "output_type: loglikelihood\ndoc_to_text: q\nrepeats: 2\n",
               "repeats and filter_list are for generate_until tasks");
  const std::string gen = base + "output_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\n";
  expect_error(gen + "filter_list:\n  - name: x\n    filter:\n      - function: regex\n", "t.yaml:8");
  expect_error(gen + "filter_list:\n  - name: x\n    filter:\n      - function: regex\n",
               "the last step must be take_first");
  expect_error(gen + "filter_list:\n  - name: x\n    filter: [{function: take_first}, {function: lowercase}]\n",
               "must be the last step");
  expect_error(
      gen + "filter_list:\n  - name: x\n    filter: [{function: multi_choice_regex}, {function: take_first}]\n",
      "filter function 'multi_choice_regex' is not supported");
  expect_error(
      gen + "filter_list:\n  - name: x\n    filter: [{function: regex, regex_pattern: '(a'}, {function: take_first}]\n",
      "t.yaml:9");
  expect_error(
      gen + "filter_list:\n  - name: x\n    filter: [{function: regex, regex_pattern: '(a'}, {function: take_first}]\n",
      "regular expression '(a' does not compile");
  expect_error(gen + "filter_list:\n  - name: x\n    filter: [{function: regex, k: 2}, {function: take_first}]\n",
               "'k' is not an option of filter regex");
  expect_error(gen +
                   "filter_list:\n  - {name: x, filter: [{function: take_first}]}\n  - {name: x, filter: [{function: "
                   "take_first}]}\n",
               "two pipelines named 'x'");
  expect_error(gen + "metric_list: [{metric: exact_match, regexes_to_ignore: ['[']}]\n", "does not compile");
  expect_error(gen + "metric_list: [{metric: bleu, ignore_case: true}]\n", "option ignore_case of bleu");
  expect_error(gen + "repeats: 0\n", "repeats must be >= 1");
  expect_error(
      gen +
          "repeats: 2\nfilter_list:\n  - {name: x, filter: [{function: take_first_k, k: 3}, {function: take_first}]}\n",
      "take_first_k k=3 needs repeats >= 3 (repeats is 2)");
  expect_error("task: t\ndataset_path: hellaswag\n", "dataset_path must be 'json'");
  expect_error(base +
                   "output_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\n"
                   "generation_kwargs: {do_sample: true}\n",
               "do_sample: true needs a temperature > 0");
  testing::write_file(dir / "d.jsonl", "{\"q\": \"x\"}\nnot json\n");
  EXPECT_THROW(load_documents(dir / "d.jsonl"), DataError);
  // Templates render as lm-eval's StrictUndefined environment: a missing field is an error naming it.
  EXPECT_EQ(resolve_doc_field("Q: {{q}}\n", json{{"q", "x"}}, "t").get<std::string>(), "Q: x\n");
  EXPECT_EQ(resolve_doc_field("q", json{{"q", 3}}, "t"), json(3));
  try {
    resolve_doc_field("{{missing}}", json{{"q", "x"}}, "task t: doc_to_text");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'missing' is undefined"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_python_list("['a', \"b's\", 'c\\n', 3]", "t"), json::parse(R"(["a", "b's", "c\n", 3])"));
  EXPECT_THROW(parse_python_list("['a'", "t"), DataError);
}

}  // namespace
}  // namespace troupe::evaluation
