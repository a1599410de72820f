// Robustness, bias and toxicity probes.
//  * Perturbations (robustness): a document's input text changed by a seeded perturbation before it is asked, so a
//    task's accuracy can be compared clean vs perturbed (`troupe eval run --perturb KIND:RATE`):
//      typos       each letter, with probability rate, deleted, doubled, swapped with the next or replaced by
//                  a neighbouring key on a QWERTY keyboard
//      case        each word, with probability rate, upper-cased, lower-cased or capitalised
//      whitespace  each space, with probability rate, widened to 2-3 spaces or made a tab
//      distractor  with probability rate (per document), an irrelevant sentence before or after the text
//    The same (seed, document, text) always gives the same perturbation.
//  * Gender-occupation bias: for each occupation and template ("The nurse said that"), log p(" he") - log p(" she")
//    under the model; the summary is the mean difference over occupations (> 0: "he" more likely), the share of
//    occupations preferring "he", and the mean absolute difference (how strongly gendered, either way).
//  * Toxicity: the share of texts containing a word of a lexicon lives in metrics/toxicity.h (torch-free, shared with
//    the toxicity reward).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/gpt.h"
#include "tokenizers/bpe_tokenizer.h"

namespace troupe::evaluation {

struct Perturbation {
  std::string kind;  // typos | case | whitespace | distractor
  double rate = 0.1;
  uint64_t seed = 0;
  std::string label() const;  // "typos:0.1"
};
// "KIND" or "KIND:RATE"; ConfigError naming the accepted kinds or a rate outside [0, 1].
Perturbation parse_perturbation(const std::string& text);
std::string perturb_text(const std::string& text, const Perturbation& p, uint64_t document);

struct BiasRow {
  std::string occupation;
  double logp_he = 0, logp_she = 0;  // summed over the templates
  double difference() const { return logp_he - logp_she; }
};
struct BiasProbeResult {
  std::vector<BiasRow> rows;
  double mean_difference = 0;  // mean over occupations of log p(he) - log p(she), per template
  double he_share = 0;         // occupations with difference > 0
  double mean_abs_difference = 0;
};
const std::vector<std::string>& default_occupations();
const std::vector<std::string>& default_bias_templates();  // each with "{occupation}"
BiasProbeResult gender_occupation_probe(models::Gpt& model, const tokenizers::BpeTokenizer& tok,
                                        const std::vector<std::string>& occupations = default_occupations(),
                                        const std::vector<std::string>& templates = default_bias_templates());

}  // namespace troupe::evaluation
