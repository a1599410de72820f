// `troupe data agreement FILE.jsonl...`: inter-labeller agreement over the records of `troupe label`
// (dataprep/label_agreement.h), printed as a table or, with --json, as one JSON object (an undefined statistic is
// null there and "undef" in the table). Thin printing only: the statistics live in metrics/agreement.h.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "dataprep/label_agreement.h"
#include "dataprep/label_record.h"

namespace troupe::cli {
namespace {

using dataprep::AgreementReport;
using dataprep::PairAgreement;

nlohmann::ordered_json number(double x) {
  return std::isnan(x) ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(x);
}

std::string fixed(double x, int width) {
  return std::isnan(x) ? fmt::format("{:>{}}", "undef", width) : fmt::format("{:>{}.3f}", x, width);
}

std::string percent(double x) { return std::isnan(x) ? "undef" : fmt::format("{:.1f}%", 100 * x); }

nlohmann::ordered_json pair_json(const PairAgreement& p) {
  return {{"a", p.a},
          {"b", p.b},
          {"prompts", p.prompts},
          {"rating_items", p.rating_items},
          {"rating_kappa", number(p.rating_kappa)},
          {"rating_kappa_linear", number(p.rating_kappa_linear)},
          {"rating_kappa_quadratic", number(p.rating_kappa_quadratic)},
          {"rating_agreement", number(p.rating_agreement)},
          {"preference_items", p.preference_items},
          {"preference_kappa", number(p.preference_kappa)},
          {"preference_agreement", number(p.preference_agreement)},
          {"strict_pairs", p.strict_pairs},
          {"strict_agreements", p.strict_agreements},
          {"preference_agreement_with_ties", number(p.preference_agreement_with_ties)}};
}

nlohmann::ordered_json report_json(const AgreementReport& r) {
  nlohmann::ordered_json j;
  j["records"] = r.records;
  j["skipped"] = r.skipped;
  j["replaced"] = r.replaced;
  j["labellers"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.labellers.size(); ++i)
    j["labellers"].push_back({{"name", r.labellers[i]}, {"prompts", r.labelled[i]}});
  j["pairs"] = nlohmann::ordered_json::array();
  for (const auto& p : r.pairs) j["pairs"].push_back(pair_json(p));
  j["preference_agreement"] = number(r.preference_agreement);
  j["strict_pairs"] = r.strict_pairs;
  j["strict_agreements"] = r.strict_agreements;
  j["fleiss"] = {{"labellers", r.fleiss.labellers},
                 {"prompts", r.fleiss.prompts},
                 {"rating_items", r.fleiss.rating_items},
                 {"rating_kappa", number(r.fleiss.rating_kappa)},
                 {"preference_items", r.fleiss.preference_items},
                 {"preference_kappa", number(r.fleiss.preference_kappa)}};
  return j;
}

void print_table(const AgreementReport& r) {
  std::cout << fmt::format("{} records ({} skipped, {} replaced by a later record); labellers:", r.records, r.skipped,
                           r.replaced);
  for (size_t i = 0; i < r.labellers.size(); ++i) std::cout << fmt::format(" {} ({})", r.labellers[i], r.labelled[i]);
  std::cout << "\n\nCohen's kappa per pair of labellers, on the prompts both labelled\n";
  std::cout << fmt::format("{:<24} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>17} {:>7}\n", "labellers",
                           "prompts", "ratings", "kappa", "linear", "quadr.", "equal", "pairs", "kappa",
                           "agree (no ties)", "3-way");
  for (const auto& p : r.pairs) {
    std::cout << fmt::format(
        "{:<24} {:>7} | {:>7} {} {} {} {:>7} | {:>7} {} {:>17} {:>7}\n", p.a + " - " + p.b, p.prompts, p.rating_items,
        fixed(p.rating_kappa, 7), fixed(p.rating_kappa_linear, 7), fixed(p.rating_kappa_quadratic, 7),
        percent(p.rating_agreement), p.preference_items, fixed(p.preference_kappa, 7),
        fmt::format("{} ({}/{})", percent(p.preference_agreement), p.strict_agreements, p.strict_pairs),
        percent(p.preference_agreement_with_ties));
  }
  std::cout << fmt::format(
      "\npairwise preference agreement, all labeller pairs pooled: {} ({} of {} response pairs "
      "that neither labeller tied)\n",
      percent(r.preference_agreement), r.strict_agreements, r.strict_pairs);
  const auto& f = r.fleiss;
  std::cout << fmt::format(
      "Fleiss' kappa, all {} labellers on the {} prompts every one labelled: ratings {} ({} "
      "items), preferences {} ({} response pairs)\n",
      f.labellers, f.prompts, fixed(f.rating_kappa, 0), f.rating_items, fixed(f.preference_kappa, 0),
      f.preference_items);
  std::cout << "\nratings: the 1-7 rating of each response (linear / quadratic weights: distance on the scale); "
               "pairs: each response pair i < j as i better / tie / j better;\nagree (no ties): the fraction of "
               "response pairs both labellers ranked without a tie on which they prefer the same response;\nundef: "
               "0/0, e.g. every label in one category (scikit-learn and statsmodels return NaN), or no items\n";
}

}  // namespace

void add_data_agreement_command(CLI::App& data, int& exit_code) {
  struct Args {
    std::vector<std::string> files;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = data.add_subcommand(
      "agreement",
      "Inter-labeller agreement of `troupe label` records: Cohen's kappa per labeller pair (ratings, pairwise "
      "preferences), Fleiss' kappa, pairwise preference agreement");
  cmd->add_option("files", args->files, "labelling records (JSONL), one or several files")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "print one JSON object (undefined statistics are null)");
  cmd->callback([args, &exit_code] {
    std::vector<dataprep::LabelRecord> records;
    for (const auto& file : args->files) {
      auto part = dataprep::read_label_records(file);
      records.insert(records.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }
    const AgreementReport report = dataprep::compute_agreement(records);
    if (args->json) {
      std::cout << report_json(report).dump(2) << "\n";
    } else {
      print_table(report);
    }
    exit_code = 0;
  });
}

}  // namespace troupe::cli
