// Inter-labeller agreement over labelling records (dataprep/label_record.h) of the same prompts by several
// labellers (`troupe data agreement`): Cohen's kappa per pair of labellers on the 1-7 ratings (unweighted, linear,
// quadratic) and on pairwise preferences, Fleiss' kappa across all labellers, and the raw pairwise agreement that
// the InstructGPT paper reports (~73%). The statistics are metrics/agreement.h; this file pairs up the items.
//
// Items. Ratings: one item per (prompt, response), the category is the rating 1..7 (Cohen's kappa with the labels
// 1..7, so the linear and quadratic weights are distances on the rating scale). Preferences: one item per
// (prompt, response pair i < j), the category is "i better" (rank_i < rank_j), "tie" or "j better". Preference
// agreement: the fraction of response pairs on which the two labellers prefer the same response, over the pairs
// that neither of them tied (a tie says neither is better, so it neither agrees nor disagrees with a preference, and
// InstructGPT's ~73% is agreement on which output is better); preference_agreement_with_ties counts the three-way
// outcome over all pairs. Skipped records are left out; a labeller's later record of a prompt replaces an earlier
// one.
#pragma once

#include <string>
#include <vector>

#include "dataprep/label_record.h"

namespace troupe::dataprep {

// One pair of labellers on the prompts both labelled. A statistic with no items (or 0 / 0) is NaN.
struct PairAgreement {
  std::string a, b;                           // labeller names, a < b
  size_t prompts = 0;                         // prompts both labelled
  size_t rating_items = 0;                    // responses both rated
  double rating_kappa = 0;                    // Cohen, unweighted
  double rating_kappa_linear = 0;             // Cohen, linear weights on 1..7
  double rating_kappa_quadratic = 0;          // Cohen, quadratic weights on 1..7
  double rating_agreement = 0;                // fraction of equal ratings
  size_t preference_items = 0;                // response pairs both ranked
  double preference_kappa = 0;                // Cohen over i better / tie / j better
  double preference_agreement_with_ties = 0;  // fraction of equal three-way outcomes
  size_t strict_pairs = 0;                    // response pairs neither labeller tied
  size_t strict_agreements = 0;               // of those, the ones both prefer the same response in
  double preference_agreement = 0;            // strict_agreements / strict_pairs
};

// Fleiss' kappa across every labeller, on the prompts every one of them labelled.
struct GroupAgreement {
  size_t labellers = 0;
  size_t prompts = 0;
  size_t rating_items = 0;
  size_t preference_items = 0;
  double rating_kappa = 0;      // NaN without items
  double preference_kappa = 0;  // NaN without items
};

struct AgreementReport {
  std::vector<std::string> labellers;  // sorted: every labeller with a record that is not skipped
  std::vector<size_t> labelled;        // per labeller: prompts labelled (not skipped)
  size_t records = 0;                  // records read
  size_t skipped = 0;                  // of those, skipped ones (left out)
  size_t replaced = 0;                 // records replaced by the same labeller's later record of the prompt
  std::vector<PairAgreement> pairs;    // labeller pairs that share at least one prompt
  GroupAgreement fleiss;
  size_t strict_pairs = 0;  // summed over the labeller pairs
  size_t strict_agreements = 0;
  double preference_agreement = 0;  // strict_agreements / strict_pairs (pooled over labeller pairs)
};

// The report. DataError when no prompt was labelled by two labellers (naming who labelled how many), or when two
// records of one id disagree on the prompt or the responses (naming both file:line).
AgreementReport compute_agreement(const std::vector<LabelRecord>& records);

// The three-way preference of a ranking between responses i and j: 0 = i better, 1 = tie, 2 = j better.
int preference_category(const std::vector<int>& ranks, size_t i, size_t j);

}  // namespace troupe::dataprep
