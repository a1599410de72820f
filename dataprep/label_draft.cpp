// The editing state of one labelled item (dataprep/label_draft.h). Not the UI.
#include "dataprep/label_draft.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/errors.h"

namespace troupe::dataprep {

LabelDraft::LabelDraft(size_t responses) : ratings_(responses), ranks_(responses), flags_(responses) {
  if (responses < 2) throw ConfigError(fmt::format("a label draft needs at least 2 responses, got {}", responses));
}

LabelDraft LabelDraft::from_record(const LabelRecord& record) {
  LabelDraft d(record.responses.size());
  d.comment = record.comment;
  if (record.skipped) return d;
  for (size_t i = 0; i < d.size(); ++i) {
    d.rate(i, record.ratings.at(i));
    d.set_rank(i, record.ranks.at(i));
    d.flags_[i].insert(record.flags.at(i).begin(), record.flags.at(i).end());
  }
  return d;
}

void LabelDraft::rate(size_t i, int rating) {
  if (rating < kMinRating || rating > kMaxRating) {
    throw ConfigError(fmt::format("rating {} is outside {}..{}", rating, kMinRating, kMaxRating));
  }
  ratings_.at(i) = rating;
}

void LabelDraft::set_rank(size_t i, int rank) {
  if (rank < 1 || rank > static_cast<int>(size())) {
    throw ConfigError(fmt::format("rank {} is outside 1..{} ({} responses)", rank, size(), size()));
  }
  ranks_.at(i) = rank;
}

void LabelDraft::rank_better(size_t i) { ranks_.at(i) = ranks_.at(i) ? std::max(1, *ranks_[i] - 1) : 1; }

void LabelDraft::rank_worse(size_t i) {
  if (ranks_.at(i)) {
    ranks_[i] = std::min(static_cast<int>(size()), *ranks_[i] + 1);
    return;
  }
  int worst = 0;
  for (const auto& r : ranks_) worst = std::max(worst, r.value_or(0));
  ranks_[i] = std::min(static_cast<int>(size()), worst + 1);
}

void LabelDraft::toggle_flag(size_t i, LabelFlag flag) {
  auto& set = flags_.at(i);
  if (!set.erase(flag)) set.insert(flag);
}

bool LabelDraft::touched() const {
  for (size_t i = 0; i < size(); ++i) {
    if (ratings_[i] || ranks_[i] || !flags_[i].empty()) return true;
  }
  return !comment.empty();
}

std::optional<std::string> LabelDraft::problem() const {
  for (size_t i = 0; i < size(); ++i) {
    if (!ratings_[i]) return fmt::format("response {} has no rating (keys 1-7)", i + 1);
  }
  std::vector<int> ranks;
  for (size_t i = 0; i < size(); ++i) {
    if (!ranks_[i]) return fmt::format("response {} has no rank (r then 1-{}, or + / -)", i + 1, size());
    ranks.push_back(*ranks_[i]);
  }
  return ranking_problem(ranks);
}

LabelRecord LabelDraft::to_record(const LabelItem& item, const std::string& labeller, double seconds) const {
  if (const auto why = problem()) throw ConfigError("the judgement is incomplete: " + *why);
  LabelRecord r;
  r.id = item.id;
  r.labeller = labeller;
  r.prompt = item.prompt;
  r.responses = item.responses;
  for (size_t i = 0; i < size(); ++i) {
    r.ranks.push_back(*ranks_[i]);
    r.ratings.push_back(*ratings_[i]);
    r.flags.emplace_back(flags_[i].begin(), flags_[i].end());
  }
  r.comment = comment;
  r.time = utc_now_iso8601();
  r.seconds = seconds;
  return r;
}

LabelRecord skipped_record(const LabelItem& item, const std::string& labeller, double seconds,
                           const std::string& comment) {
  LabelRecord r;
  r.id = item.id;
  r.labeller = labeller;
  r.prompt = item.prompt;
  r.responses = item.responses;
  r.skipped = true;
  r.comment = comment;
  r.time = utc_now_iso8601();
  r.seconds = seconds;
  return r;
}

}  // namespace troupe::dataprep
