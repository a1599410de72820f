// The evaluation harness against lm-evaluation-harness itself (tests/evaluation/lm_eval_reference.py runs
// lm_eval.simple_evaluate in the test on the same Hugging Face GPT-2 directory and the same task YAML files):
// every example's context (few-shot draw, description, delimiters), continuations, log-likelihoods, greedy flags,
// generations and metric values, and the aggregates with their standard errors.
#include "evaluation/harness.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "evaluation/doc_template.h"
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
    const std::string key = m.name + ",none";
    ASSERT_TRUE(theirs.contains(key)) << m.name;
    const double want = theirs[key].get<double>();
    EXPECT_NEAR(m.value, want, 1e-6 * std::max(1.0, std::abs(want))) << m.name;
    if (m.stderr_of_mean >= 0) {
      EXPECT_NEAR(m.stderr_of_mean, theirs[m.name + "_stderr,none"].get<double>(), 1e-9) << m.name;
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
  expect_error(base + "output_type: loglikelihood\ndoc_to_text: q\nfilter_list: []\n",
               "unknown or unsupported task key 'filter_list'");
  expect_error("task: t\ndataset_path: hellaswag\n", "dataset_path must be 'json'");
  expect_error(base +
                   "output_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\n"
                   "generation_kwargs: {do_sample: true}\n",
               "only greedy");
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
