// Pairs up the items of labelling records for metrics/agreement.h (dataprep/label_agreement.h). Not the statistics
// themselves and not their printing (cli/cmd_data_agreement.cpp).
#include "dataprep/label_agreement.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/errors.h"
#include "metrics/agreement.h"

namespace troupe::dataprep {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<int> kRatingLabels = {1, 2, 3, 4, 5, 6, 7};
const std::vector<int> kPreferenceLabels = {0, 1, 2};

// id -> labeller -> the labeller's last record of it (not skipped).
using ById = std::map<std::string, std::map<std::string, const LabelRecord*>>;

ById group_records(const std::vector<LabelRecord>& records, AgreementReport& report) {
  std::map<std::string, const LabelRecord*> first_of_id;  // to check that an id always means the same item
  std::map<std::pair<std::string, std::string>, const LabelRecord*> last;  // (id, labeller) -> record
  for (const auto& r : records) {
    const auto [it, fresh] = first_of_id.emplace(r.id, &r);
    if (!fresh && (it->second->prompt != r.prompt || it->second->responses != r.responses)) {
      throw DataError(fmt::format("{} and {}: id \"{}\" has a different prompt or responses (one id must be one item)",
                                  it->second->where, r.where, r.id));
    }
    auto& slot = last[{r.id, r.labeller}];
    if (slot) ++report.replaced;
    slot = &r;
    report.skipped += r.skipped;
  }
  ById by_id;
  for (const auto& [key, r] : last) {
    if (!r->skipped) by_id[key.first][key.second] = r;
  }
  return by_id;
}

// Rating and preference labels of the given labellers on one prompt, appended per labeller.
void append_items(const std::vector<const LabelRecord*>& recs, std::vector<std::vector<int>>& ratings,
                  std::vector<std::vector<int>>& prefs) {
  for (size_t l = 0; l < recs.size(); ++l) {
    const auto& r = *recs[l];
    ratings[l].insert(ratings[l].end(), r.ratings.begin(), r.ratings.end());
    for (size_t i = 0; i < r.ranks.size(); ++i) {
      for (size_t j = i + 1; j < r.ranks.size(); ++j) prefs[l].push_back(preference_category(r.ranks, i, j));
    }
  }
}

double kappa_or_nan(const std::vector<int>& a, const std::vector<int>& b, metrics::KappaWeights w,
                    const std::vector<int>& labels) {
  return a.empty() ? kNaN : metrics::cohen_kappa(a, b, w, labels);
}

PairAgreement pair_agreement(const ById& by_id, const std::string& a, const std::string& b) {
  PairAgreement p;
  p.a = a;
  p.b = b;
  std::vector<std::vector<int>> ratings(2), prefs(2);
  for (const auto& [id, recs] : by_id) {
    const auto ra = recs.find(a), rb = recs.find(b);
    if (ra == recs.end() || rb == recs.end()) continue;
    ++p.prompts;
    append_items({ra->second, rb->second}, ratings, prefs);
  }
  using metrics::KappaWeights;
  p.rating_items = ratings[0].size();
  p.rating_kappa = kappa_or_nan(ratings[0], ratings[1], KappaWeights::kNone, kRatingLabels);
  p.rating_kappa_linear = kappa_or_nan(ratings[0], ratings[1], KappaWeights::kLinear, kRatingLabels);
  p.rating_kappa_quadratic = kappa_or_nan(ratings[0], ratings[1], KappaWeights::kQuadratic, kRatingLabels);
  p.rating_agreement = metrics::observed_agreement(ratings[0], ratings[1]);
  p.preference_items = prefs[0].size();
  p.preference_kappa = kappa_or_nan(prefs[0], prefs[1], KappaWeights::kNone, kPreferenceLabels);
  p.preference_agreement_with_ties = metrics::observed_agreement(prefs[0], prefs[1]);
  for (size_t i = 0; i < prefs[0].size(); ++i) {
    if (prefs[0][i] == 1 || prefs[1][i] == 1) continue;  // a tie: neither agrees nor disagrees
    ++p.strict_pairs;
    p.strict_agreements += prefs[0][i] == prefs[1][i];
  }
  p.preference_agreement =
      p.strict_pairs ? static_cast<double>(p.strict_agreements) / static_cast<double>(p.strict_pairs) : kNaN;
  return p;
}

// Subjects x raters, transposed from per-rater label lists.
std::vector<std::vector<int>> by_subject(const std::vector<std::vector<int>>& per_rater) {
  std::vector<std::vector<int>> out(per_rater[0].size(), std::vector<int>(per_rater.size()));
  for (size_t r = 0; r < per_rater.size(); ++r) {
    for (size_t s = 0; s < per_rater[r].size(); ++s) out[s][r] = per_rater[r][s];
  }
  return out;
}

GroupAgreement group_agreement(const ById& by_id, const std::vector<std::string>& labellers) {
  GroupAgreement g;
  g.labellers = labellers.size();
  std::vector<std::vector<int>> ratings(labellers.size()), prefs(labellers.size());
  for (const auto& [id, recs] : by_id) {
    std::vector<const LabelRecord*> all;
    for (const auto& name : labellers) {
      if (const auto it = recs.find(name); it != recs.end()) all.push_back(it->second);
    }
    if (all.size() != labellers.size()) continue;
    ++g.prompts;
    append_items(all, ratings, prefs);
  }
  g.rating_items = ratings[0].size();
  g.preference_items = prefs[0].size();
  g.rating_kappa = g.rating_items ? metrics::fleiss_kappa(by_subject(ratings)) : kNaN;
  g.preference_kappa = g.preference_items ? metrics::fleiss_kappa(by_subject(prefs)) : kNaN;
  return g;
}

std::string who_labelled(const AgreementReport& report) {
  std::string s;
  for (size_t i = 0; i < report.labellers.size(); ++i) {
    s += fmt::format("{}{} ({} prompts)", i ? ", " : "", report.labellers[i], report.labelled[i]);
  }
  return s.empty() ? "none" : s;
}

}  // namespace

int preference_category(const std::vector<int>& ranks, size_t i, size_t j) {
  return ranks.at(i) < ranks.at(j) ? 0 : ranks[i] == ranks[j] ? 1 : 2;
}

AgreementReport compute_agreement(const std::vector<LabelRecord>& records) {
  AgreementReport report;
  report.records = records.size();
  const ById by_id = group_records(records, report);
  std::map<std::string, size_t> counts;
  for (const auto& [id, recs] : by_id) {
    for (const auto& [name, r] : recs) ++counts[name];
  }
  for (const auto& [name, n] : counts) {
    report.labellers.push_back(name);
    report.labelled.push_back(n);
  }
  for (size_t i = 0; i < report.labellers.size(); ++i) {
    for (size_t j = i + 1; j < report.labellers.size(); ++j) {
      PairAgreement p = pair_agreement(by_id, report.labellers[i], report.labellers[j]);
      if (p.prompts == 0) continue;
      report.strict_pairs += p.strict_pairs;
      report.strict_agreements += p.strict_agreements;
      report.pairs.push_back(std::move(p));
    }
  }
  if (report.pairs.empty()) {
    throw DataError(
        fmt::format("agreement needs a prompt labelled by at least 2 labellers (not skipped); labellers: {}",
                    who_labelled(report)));
  }
  report.preference_agreement =
      report.strict_pairs ? static_cast<double>(report.strict_agreements) / static_cast<double>(report.strict_pairs)
                          : kNaN;
  report.fleiss = group_agreement(by_id, report.labellers);
  return report;
}

}  // namespace troupe::dataprep
