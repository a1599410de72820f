// The judgement of one item while a labeller edits it (`troupe label`): a rating, a rank and flags per response and
// a comment, with the edits the keys make (rank a response, move it up or down, toggle a flag) and the check that
// it is complete before it becomes a LabelRecord. Not the screen or the keys (cli/label_app.h).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dataprep/label_record.h"

namespace troupe::dataprep {

class LabelDraft {
 public:
  explicit LabelDraft(size_t responses);
  // The draft a record was made from (undo reopens it); a skipped record gives an empty draft with its comment.
  static LabelDraft from_record(const LabelRecord& record);

  size_t size() const { return ratings_.size(); }
  const std::optional<int>& rating(size_t i) const { return ratings_.at(i); }
  const std::optional<int>& rank(size_t i) const { return ranks_.at(i); }
  const std::set<LabelFlag>& flags(size_t i) const { return flags_.at(i); }
  std::string comment;

  // rating in 1..7; ConfigError outside.
  void rate(size_t i, int rating);
  // rank in 1..K (equal ranks = a tie); ConfigError outside.
  void set_rank(size_t i, int rank);
  // Better: one rank up (an unranked response becomes rank 1); worse: one rank down (an unranked response goes
  // just below the worst rank given so far); both stay within 1..K.
  void rank_better(size_t i);
  void rank_worse(size_t i);
  void toggle_flag(size_t i, LabelFlag flag);
  bool touched() const;  // anything set

  // Why it cannot be submitted yet (a missing rating or rank, ranks with a gap), or nullopt.
  std::optional<std::string> problem() const;
  // The record of a complete draft (problem() must be nullopt; ConfigError otherwise).
  LabelRecord to_record(const LabelItem& item, const std::string& labeller, double seconds) const;

 private:
  std::vector<std::optional<int>> ratings_;  // (K)
  std::vector<std::optional<int>> ranks_;    // (K)
  std::vector<std::set<LabelFlag>> flags_;   // (K)
};

// A skipped record of `item`.
LabelRecord skipped_record(const LabelItem& item, const std::string& labeller, double seconds,
                           const std::string& comment);

}  // namespace troupe::dataprep
