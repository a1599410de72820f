#include "metrics/text_metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/errors.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/classification.h"
#include "metrics/meteor.h"
#include "metrics/rouge.h"
#include "metrics/squad.h"
#include "metrics/ter.h"

namespace troupe::metrics {
namespace {

void check_pairs(const std::string& name, const std::vector<std::string>& hyps,
                 const std::vector<std::vector<std::string>>& refs) {
  if (hyps.size() != refs.size()) {
    throw DataError(fmt::format("metric {}: {} hypotheses but {} reference lists", name, hyps.size(), refs.size()));
  }
  if (hyps.empty()) throw DataError(fmt::format("metric {}: no examples", name));
  for (size_t i = 0; i < refs.size(); ++i) {
    if (refs[i].empty()) throw DataError(fmt::format("metric {}: example {} has no reference", name, i + 1));
  }
}

TextMetricResult bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const TextMetricOptions& o) {
  BleuOptions bo;
  bo.tokenize = o.tokenize;
  bo.lowercase = o.lowercase;
  bo.smooth_method = o.smooth;
  const BleuScore s = corpus_bleu(hyps, refs, bo);
  TextMetricResult r;
  r.values = {{"bleu", s.score},
              {"bleu_bp", s.bp},
              {"bleu_sys_len", static_cast<double>(s.sys_len)},
              {"bleu_ref_len", static_cast<double>(s.ref_len)}};
  for (size_t n = 0; n < s.precisions.size(); ++n)
    r.values.emplace_back(fmt::format("bleu_p{}", n + 1), s.precisions[n]);
  r.signature = s.signature;
  r.summary = s.format();
  // Per example: sacrebleu's sentence_bleu (effective order) from each segment's statistics, tokenised once.
  BleuOptions sentence = bo;
  sentence.effective_order = true;
  const int nrefs = static_cast<int>(refs.front().size());
  r.per_example.reserve(hyps.size());
  for (const BleuStats& st : bleu_segment_stats(hyps, refs, bo)) {
    r.per_example.push_back(bleu_from_stats(st, sentence, nrefs).score);
  }
  return r;
}

TextMetricResult chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const TextMetricOptions& o, int word_order) {
  ChrfOptions co;
  co.word_order = word_order;
  co.lowercase = o.lowercase;
  const ChrfScore s = corpus_chrf(hyps, refs, co);
  TextMetricResult r;
  r.values = {{word_order > 0 ? "chrf++" : "chrf", s.score}};
  r.signature = s.signature;
  r.summary = s.format();
  const int nrefs = static_cast<int>(refs.front().size());
  for (const auto& st : chrf_segment_stats(hyps, refs, co))
    r.per_example.push_back(chrf_from_stats(st, co, nrefs).score);
  return r;
}

TextMetricResult ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                     const TextMetricOptions&) {
  TerOptions to;  // sacrebleu's TER defaults: case-insensitive

  const TerScore s = corpus_ter(hyps, refs, to);
  TextMetricResult r;
  r.values = {{"ter", s.score}};
  r.signature = s.signature;
  r.summary = s.format();
  for (size_t i = 0; i < hyps.size(); ++i) r.per_example.push_back(sentence_ter(hyps[i], refs[i], to).score);
  return r;
}

TextMetricResult rouge(const std::string& name, const std::vector<std::string>& hyps,
                       const std::vector<std::vector<std::string>>& refs, const TextMetricOptions& o) {
  RougeOptions ro;
  ro.use_stemmer = o.stem;
  if (name != "rouge") ro.types = {name};
  TextMetricResult r;
  RougeScores sum;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const RougeScores s = rouge_score_multi(refs[i], hyps[i], ro);
    r.per_example.push_back(s.at(ro.types.front()).fmeasure);
    for (const auto& [type, v] : s) {
      sum[type].precision += v.precision;
      sum[type].recall += v.recall;
      sum[type].fmeasure += v.fmeasure;
    }
  }
  const auto n = static_cast<double>(hyps.size());
  std::string summary;
  for (const auto& type : ro.types) {  // headline first: the F-measures in the order asked, then P and R
    r.values.emplace_back(type, sum[type].fmeasure / n);
    summary += fmt::format("{}{} = {:.4f}", summary.empty() ? "" : "  ", type, sum[type].fmeasure / n);
  }
  for (const auto& type : ro.types) {
    r.values.emplace_back(type + "_precision", sum[type].precision / n);
    r.values.emplace_back(type + "_recall", sum[type].recall / n);
  }
  r.summary = summary + (o.stem ? "  (F-measure, Porter stemmer)" : "  (F-measure)");
  return r;
}

}  // namespace

const std::vector<std::string>& text_metric_names() {
  static const std::vector<std::string> names = {"bleu",   "chrf",        "chrf++",    "ter",   "rouge1",
                                                 "rouge2", "rougeL",      "rougeLsum", "rouge", "meteor",
                                                 "squad",  "exact_match", "accuracy"};
  return names;
}

bool is_text_metric(const std::string& name) {
  const auto& n = text_metric_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

TextMetricResult compute_text_metric(const std::string& name, const std::vector<std::string>& hyps,
                                     const std::vector<std::vector<std::string>>& refs,
                                     const TextMetricOptions& options) {
  if (!is_text_metric(name)) {
    throw ConfigError(
        fmt::format("unknown metric '{}': expected one of {}", name, fmt::join(text_metric_names(), ", ")));
  }
  check_pairs(name, hyps, refs);
  TextMetricResult r;
  if (name == "bleu") {
    r = bleu(hyps, refs, options);
  } else if (name == "chrf" || name == "chrf++") {
    r = chrf(hyps, refs, options, name == "chrf++" ? 2 : 0);
  } else if (name == "ter") {
    r = ter(hyps, refs, options);
  } else if (name.rfind("rouge", 0) == 0) {
    r = rouge(name, hyps, refs, options);
  } else if (name == "meteor") {
    double sum = 0;
    for (size_t i = 0; i < hyps.size(); ++i) {
      r.per_example.push_back(meteor_score(refs[i], hyps[i]));
      sum += r.per_example.back();
    }
    r.values = {{"meteor", sum / static_cast<double>(hyps.size())}};
    r.summary = fmt::format("METEOR = {:.4f} (NLTK, mean over {} examples)", r.headline(), hyps.size());
  } else if (name == "squad") {
    const SquadScores s = squad_scores(hyps, refs);
    r.values = {{"exact_match", s.exact_match}, {"f1", s.f1}};
    for (size_t i = 0; i < hyps.size(); ++i) {
      double best = 0;
      for (const auto& g : refs[i]) best = std::max(best, squad_f1(hyps[i], g));
      r.per_example.push_back(100.0 * best);
    }
    r.summary = fmt::format("SQuAD exact match = {:.2f}  F1 = {:.2f}  ({} examples)", s.exact_match, s.f1, s.count);
  } else if (name == "exact_match") {
    double sum = 0;
    for (size_t i = 0; i < hyps.size(); ++i) {
      const bool hit = std::find(refs[i].begin(), refs[i].end(), hyps[i]) != refs[i].end();
      r.per_example.push_back(hit ? 1.0 : 0.0);
      sum += hit;
    }
    r.values = {{"exact_match", sum / static_cast<double>(hyps.size())}};
    r.summary = fmt::format("exact match = {:.4f} ({} examples)", r.headline(), hyps.size());
  } else {  // accuracy
    std::vector<std::string> gold;
    for (size_t i = 0; i < refs.size(); ++i) {
      if (refs[i].size() != 1) {
        throw DataError(
            fmt::format("metric accuracy: example {} has {} gold labels, expected 1", i + 1, refs[i].size()));
      }
      gold.push_back(refs[i][0]);
    }
    const ClassificationReport c = classification_report(gold, hyps);
    r.values = {{"accuracy", c.accuracy},         {"precision_macro", c.macro.precision},
                {"recall_macro", c.macro.recall}, {"f1_macro", c.macro.f1},
                {"f1_micro", c.micro.f1},         {"f1_weighted", c.weighted.f1}};
    for (const auto& [label, s] : c.per_class) r.values.emplace_back("f1[" + label + "]", s.f1);
    for (size_t i = 0; i < hyps.size(); ++i) r.per_example.push_back(hyps[i] == gold[i] ? 1.0 : 0.0);
    r.summary = fmt::format("accuracy = {:.4f}  macro F1 = {:.4f}  ({} examples, {} classes)", c.accuracy, c.macro.f1,
                            hyps.size(), c.per_class.size());
  }
  r.metric = name;
  return r;
}

}  // namespace troupe::metrics
