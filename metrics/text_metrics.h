// One entry point over every text metric, by name, for `troupe eval metric`, the evaluation harness (generation
// followed by a metric) and rewards: a metric takes hypotheses and, per hypothesis, its references, and returns
// named corpus values plus one value per example.
//   bleu, chrf, chrf++, ter          sacreBLEU 2.6 (corpus statistics; per example: the sentence score)
//   rouge1, rouge2, rougeL, rougeLsum, rouge   Google's rouge-score (F-measure; `rouge` reports all four, P/R/F)
//   meteor                            NLTK's METEOR (mean over examples)
//   squad                             SQuAD v1.1 exact match and token F1 (percent)
//   exact_match                       the exact string equality rate (lm-eval's exact_match with its defaults)
//   accuracy                          label accuracy with scikit-learn's precision/recall/F1 (micro, macro, weighted)
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace troupe::metrics {

struct TextMetricOptions {
  bool lowercase = false;        // bleu, chrf (ter is case-insensitive, as sacreBLEU's default)
  std::string tokenize = "13a";  // bleu: 13a | none | intl | char
  std::string smooth = "exp";    // bleu: none | floor | add-k | exp
  bool stem = false;             // rouge*: NLTK's Porter stemmer
};

struct TextMetricResult {
  std::string metric;
  // Corpus values, the headline one first (e.g. {"bleu", 31.2}, {"bleu_bp", 0.98}, ...).
  std::vector<std::pair<std::string, double>> values;
  std::vector<double> per_example;  // the headline value of each example (sentence BLEU, ROUGE F, ...)
  std::string signature;            // sacreBLEU's signature where there is one
  std::string summary;              // one printable line, e.g. sacreBLEU's "BLEU = 31.20 60.0/37.5/..."
  double headline() const { return values.empty() ? 0.0 : values.front().second; }
};

// The metric names above, in that order.
const std::vector<std::string>& text_metric_names();
bool is_text_metric(const std::string& name);

// refs[i]: the references of hyps[i] (the same count for every i where the metric needs it, e.g. sacreBLEU).
// ConfigError for an unknown name (listing the known ones) or option; DataError for mismatched lengths.
TextMetricResult compute_text_metric(const std::string& name, const std::vector<std::string>& hyps,
                                     const std::vector<std::vector<std::string>>& refs,
                                     const TextMetricOptions& options = {});

}  // namespace troupe::metrics
