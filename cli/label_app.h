// The labelling session of `troupe label`: the items still to label, the draft judgement of the current one
// (dataprep/label_draft.h), what each key does (rate, rank with ties, flag, comment, submit, skip, help, quit) and the
// frame drawn for a terminal of a given size. Pure state and text: the raw terminal is cli/label_terminal.h, so the
// session can be driven key by key.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/label_terminal.h"
#include "dataprep/label_draft.h"
#include "dataprep/label_record.h"

namespace troupe::cli {

struct LabelSessionOptions {
  std::string output;    // records are appended here
  std::string labeller;  // the name in every record
};

class LabelApp {
 public:
  // items: every item of the input; done: ids this labeller already labelled or skipped (they are not shown).
  LabelApp(std::vector<dataprep::LabelItem> items, const std::set<std::string>& done, LabelSessionOptions options);

  bool finished() const { return quit_; }
  bool interrupted() const { return interrupted_; }  // quit with Ctrl-C
  void handle(const Key& key);
  // The whole frame for a rows x cols terminal: cursor home, every row drawn and cleared to its end.
  std::string render(int rows, int cols);

  size_t total() const { return items_.size(); }
  size_t done() const { return done_count_; }
  size_t submitted() const { return submitted_; }  // records written this session (labelled and skipped)
  size_t skipped() const { return skipped_; }      // of those, skipped

 private:
  enum class Mode { kNormal, kRank, kFlag, kComment, kHelp, kConfirmQuit, kConfirmSkip };
  enum class Style { kPlain, kTitle, kHeader, kSelected, kDim, kError };
  struct Line {
    std::string text;
    Style style = Style::kPlain;
  };

  // A record this session appended, for undo.
  struct Written {
    size_t todo_index = 0;
    dataprep::AppendedLine where;
    std::string line;
    dataprep::LabelRecord record;
  };

  bool all_done() const { return current_ >= todo_.size(); }
  const dataprep::LabelItem& item() const { return items_[todo_[current_]]; }
  void undo();
  std::vector<Line> done_lines() const;
  void start_item();
  void handle_normal(const Key& key);
  void handle_rank(const Key& key);
  void handle_flag(const Key& key);
  void handle_comment(const Key& key);
  void handle_help(const Key& key);
  void handle_confirm(const Key& key);
  bool handle_scroll(const Key& key, size_t& scroll, int page);
  void move_selection(int delta);
  void submit();
  void write_and_advance(const dataprep::LabelRecord& record);
  double seconds_on_item() const;

  std::vector<Line> body_lines(int width, std::vector<size_t>& anchors) const;
  std::vector<Line> flag_menu() const;
  std::vector<Line> help_lines(int width) const;
  Line title_line() const;
  Line status_line() const;
  Line hint_line() const;
  std::string response_header(size_t i) const;
  static std::string draw(const Line& line, int cols);

  std::vector<dataprep::LabelItem> items_;
  std::vector<size_t> todo_;  // indices into items_, in input order
  LabelSessionOptions options_;
  size_t current_ = 0;  // into todo_
  size_t done_count_ = 0;
  size_t submitted_ = 0;
  size_t skipped_ = 0;
  std::optional<dataprep::LabelDraft> draft_;
  size_t selected_ = 0;  // the response the keys act on
  Mode mode_ = Mode::kNormal;
  std::string comment_edit_;  // the comment line while Mode::kComment
  size_t scroll_ = 0;         // first body line shown
  size_t help_scroll_ = 0;
  bool follow_selection_ = true;  // scroll so that the selected response's header shows
  int body_rows_ = 10;            // from the last render: the page size of PgUp / PgDn
  std::string message_;
  bool message_is_error_ = false;
  bool quit_ = false;
  bool interrupted_ = false;
  std::vector<Written> written_;  // this session's records, oldest first
  std::chrono::steady_clock::time_point started_;
};

}  // namespace troupe::cli
