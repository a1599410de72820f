// Keys and frames of the `troupe label` session (cli/label_app.h). Not the terminal (cli/label_terminal.cpp).
#include "cli/label_app.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/label_text.h"

namespace troupe::cli {
namespace {

using dataprep::LabelDraft;

constexpr const char* kHelp[] = {
    "GUIDELINES (after InstructGPT's labelling instructions, Ouyang et al. 2022, appendix B)",
    "",
    "Judge each output on three criteria:",
    "- Helpful: it follows the user's intention and helps them solve their task: clear language, answers the "
    "question they meant to ask, asks for clarification when the instruction is confusing, not overly long or "
    "repetitive, assumes no extra context beyond what is given.",
    "- Truthful: accurate information that does not mislead: no details made up that the input does not contain "
    "(e.g. in a summary), no false claims about the world, no misleading or questionable information.",
    "- Harmless: no physical, psychological or social harm to people, no damage to property or the environment or "
    "to institutions: treats people with respect, does not denigrate groups or use biased language, no abusive, "
    "threatening or offensive language, no sexual or violent content that was not asked for, no bad real-world "
    "advice or promotion of illegal activity.",
    "For most tasks, being truthful and harmless matters more than being helpful; weigh them when they conflict.",
    "",
    "Rate every output 1-7 overall (1 = terrible, 7 = as good as it could be), flag what applies, then rank the "
    "outputs from best (rank 1) to worst. Outputs of equal quality share a rank (a tie); ranks have no gaps "
    "(1, 1, 2 is fine; 1, 1, 3 is not).",
    "",
    "KEYS",
    "  Left/Right, Tab/Shift-Tab   select the previous / next response",
    "  Up/Down, PgUp/PgDn, Home/End   scroll",
    "  1-7                        rate the selected response",
    "  r then 1..K                give the selected response that rank (1 = best; equal ranks = a tie; 1-9, 0 = 10)",
    "  + / -                      rank the selected response one better / one worse",
    "  f then 1-9, 0              toggle a flag of the selected response (the menu lists them)",
    "  c                          write a comment (Enter keeps it, Esc cancels)",
    "  Enter                      submit: every response needs a rating and a rank",
    "  S                          skip this prompt (asks y/n; recorded as skipped)",
    "  ?                          this help (Esc, q or ? closes it)",
    "  u                          undo the last record of this session (it is removed from the output file, "
    "if nothing was appended after it, and its prompt reopens)",
    "  q                          quit (asks y/n when this prompt has unsaved judgements); Ctrl-C quits at once",
    "",
    "Submitted records are appended to the output file at once; restarting resumes at the next prompt this "
    "labeller has not labelled or skipped.",
};

std::string flag_list(const std::set<dataprep::LabelFlag>& flags) {
  if (flags.empty()) return "-";
  std::string s;
  for (auto f : flags) s += std::string(s.empty() ? "" : ", ") + dataprep::flag_name(f);
  return s;
}

std::string opt(const std::optional<int>& v) { return v ? std::to_string(*v) : "-"; }

bool is_text(const Key& key, const char* text) { return key.kind == KeyKind::kText && key.text == text; }

// 1..9, then 0 for the tenth.
std::optional<size_t> digit_index(const Key& key) {
  if (key.kind != KeyKind::kText || key.text.size() != 1 || key.text[0] < '0' || key.text[0] > '9') return {};
  return key.text[0] == '0' ? 9 : static_cast<size_t>(key.text[0] - '1');
}

}  // namespace

LabelApp::LabelApp(std::vector<dataprep::LabelItem> items, const std::set<std::string>& done,
                   LabelSessionOptions options)
    : items_(std::move(items)), options_(std::move(options)) {
  for (size_t i = 0; i < items_.size(); ++i) {
    if (done.count(items_[i].id)) {
      ++done_count_;
    } else {
      todo_.push_back(i);
    }
  }
  if (!todo_.empty()) start_item();
}

void LabelApp::start_item() {
  draft_.emplace(item().responses.size());
  selected_ = 0;
  scroll_ = 0;
  follow_selection_ = true;
  mode_ = Mode::kNormal;
  started_ = std::chrono::steady_clock::now();
}

double LabelApp::seconds_on_item() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

void LabelApp::handle(const Key& key) {
  if (finished()) return;
  if (key.kind == KeyKind::kInterrupt) {
    quit_ = interrupted_ = true;
    return;
  }
  if (all_done()) {  // the closing screen: undo or quit
    if (is_text(key, "u")) {
      undo();
    } else if (is_text(key, "q") || key.kind == KeyKind::kEscape || key.kind == KeyKind::kEnter) {
      quit_ = true;
    }
    return;
  }
  switch (mode_) {
    case Mode::kNormal: handle_normal(key); break;
    case Mode::kRank: handle_rank(key); break;
    case Mode::kFlag: handle_flag(key); break;
    case Mode::kComment: handle_comment(key); break;
    case Mode::kHelp: handle_help(key); break;
    case Mode::kConfirmQuit:
    case Mode::kConfirmSkip: handle_confirm(key); break;
  }
}

void LabelApp::move_selection(int delta) {
  const auto k = static_cast<int>(draft_->size());
  selected_ = static_cast<size_t>(((static_cast<int>(selected_) + delta) % k + k) % k);
  follow_selection_ = true;
}

bool LabelApp::handle_scroll(const Key& key, size_t& scroll, int page) {
  const size_t step = static_cast<size_t>(std::max(1, page - 1));
  switch (key.kind) {
    case KeyKind::kUp: scroll = scroll > 0 ? scroll - 1 : 0; break;
    case KeyKind::kDown: ++scroll; break;
    case KeyKind::kPageUp: scroll = scroll > step ? scroll - step : 0; break;
    case KeyKind::kPageDown: scroll += step; break;
    case KeyKind::kHome: scroll = 0; break;
    case KeyKind::kEnd: scroll = SIZE_MAX / 2; break;  // clamped when drawn
    default: return false;
  }
  return true;
}

void LabelApp::handle_normal(const Key& key) {
  message_.clear();
  message_is_error_ = false;
  if (handle_scroll(key, scroll_, body_rows_)) {
    follow_selection_ = false;
    return;
  }
  switch (key.kind) {
    case KeyKind::kLeft:
    case KeyKind::kBackTab: move_selection(-1); return;
    case KeyKind::kRight:
    case KeyKind::kTab: move_selection(1); return;
    case KeyKind::kEnter: submit(); return;
    default: break;
  }
  if (key.kind != KeyKind::kText) return;
  const std::string& t = key.text;
  if (t.size() == 1 && t[0] >= '1' && t[0] <= '7') {
    draft_->rate(selected_, t[0] - '0');
  } else if (t == "r") {
    mode_ = Mode::kRank;
  } else if (t == "+" || t == "=") {
    draft_->rank_better(selected_);
  } else if (t == "-") {
    draft_->rank_worse(selected_);
  } else if (t == "f") {
    mode_ = Mode::kFlag;
  } else if (t == "c") {
    comment_edit_ = draft_->comment;
    mode_ = Mode::kComment;
  } else if (t == "S") {
    mode_ = Mode::kConfirmSkip;
  } else if (t == "u") {
    undo();
  } else if (t == "?") {
    help_scroll_ = 0;
    mode_ = Mode::kHelp;
  } else if (t == "q") {
    if (draft_->touched()) {
      mode_ = Mode::kConfirmQuit;
    } else {
      quit_ = true;
    }
  } else {
    message_ = fmt::format("key '{}' does nothing here (? shows the keys)", printable_line(t));
    message_is_error_ = true;
  }
}

void LabelApp::handle_rank(const Key& key) {
  mode_ = Mode::kNormal;
  const auto index = digit_index(key);
  if (!index || *index >= draft_->size()) {
    if (key.kind != KeyKind::kEscape) {
      message_ = fmt::format("a rank is a number from 1 to {} (r then the rank)", draft_->size());
      message_is_error_ = true;
    }
    return;
  }
  draft_->set_rank(selected_, static_cast<int>(*index) + 1);
}

void LabelApp::handle_flag(const Key& key) {
  mode_ = Mode::kNormal;
  const auto& flags = dataprep::label_flags();
  const auto index = digit_index(key);
  if (!index || *index >= flags.size()) {
    if (key.kind != KeyKind::kEscape) {
      message_ = "a flag is chosen with 1-9 or 0 (f then the number in the menu)";
      message_is_error_ = true;
    }
    return;
  }
  draft_->toggle_flag(selected_, flags[*index].flag);
  const bool on = draft_->flags(selected_).count(flags[*index].flag) > 0;
  message_ = fmt::format("response {}: {} {}", selected_ + 1, flags[*index].name, on ? "flagged" : "cleared");
}

void LabelApp::handle_comment(const Key& key) {
  switch (key.kind) {
    case KeyKind::kEnter:
      draft_->comment = comment_edit_;
      mode_ = Mode::kNormal;
      message_ = "comment kept";
      return;
    case KeyKind::kEscape: mode_ = Mode::kNormal; return;
    case KeyKind::kBackspace:
      while (!comment_edit_.empty() && (static_cast<unsigned char>(comment_edit_.back()) & 0xC0) == 0x80) {
        comment_edit_.pop_back();  // continuation bytes of the last character
      }
      if (!comment_edit_.empty()) comment_edit_.pop_back();
      return;
    case KeyKind::kText: comment_edit_ += key.text; return;
    default: return;
  }
}

void LabelApp::handle_help(const Key& key) {
  if (handle_scroll(key, help_scroll_, body_rows_)) return;
  if (key.kind == KeyKind::kEscape || key.kind == KeyKind::kEnter || is_text(key, "q") || is_text(key, "?")) {
    mode_ = Mode::kNormal;
  }
}

void LabelApp::handle_confirm(const Key& key) {
  const Mode asked = mode_;
  mode_ = Mode::kNormal;
  if (!is_text(key, "y") && !is_text(key, "Y")) {
    message_ = asked == Mode::kConfirmQuit ? "not quitting" : "not skipped";
    return;
  }
  if (asked == Mode::kConfirmQuit) {
    quit_ = true;
    return;
  }
  ++skipped_;
  write_and_advance(dataprep::skipped_record(item(), options_.labeller, seconds_on_item(), draft_->comment));
  message_ = fmt::format("skipped {}", items_[todo_[current_ - 1]].id);
}

void LabelApp::submit() {
  if (const auto why = draft_->problem()) {
    message_ = "cannot submit yet: " + *why;
    message_is_error_ = true;
    return;
  }
  write_and_advance(draft_->to_record(item(), options_.labeller, seconds_on_item()));
  message_ = fmt::format("saved {} ({}/{} labelled by {})", items_[todo_[current_ - 1]].id, done_count_, total(),
                         options_.labeller);
}

void LabelApp::write_and_advance(const dataprep::LabelRecord& record) {
  Written w{current_, {}, dataprep::record_json_line(record), record};
  w.where = dataprep::append_record_line(options_.output, w.line);
  written_.push_back(std::move(w));
  ++submitted_;
  ++done_count_;
  ++current_;
  if (!all_done()) start_item();
}

void LabelApp::undo() {
  message_is_error_ = true;
  if (written_.empty()) {
    message_ = "nothing to undo: no record was written in this session";
    return;
  }
  const Written& w = written_.back();
  if (!dataprep::retract_line(options_.output, w.where, w.line)) {
    message_ = fmt::format("cannot undo {}: {} has lines after it now (another labeller appended)", w.record.id,
                           options_.output);
    return;
  }
  current_ = w.todo_index;
  --submitted_;
  --done_count_;
  if (w.record.skipped) --skipped_;
  start_item();
  draft_ = dataprep::LabelDraft::from_record(w.record);
  message_ = fmt::format("undone: the record of {} was removed; it is open again", w.record.id);
  message_is_error_ = false;
  written_.pop_back();
}

std::string LabelApp::response_header(size_t i) const {
  return fmt::format("{} Response {} of {}   rating {}   rank {}   flags: {}", i == selected_ ? ">>" : "  ", i + 1,
                     draft_->size(), opt(draft_->rating(i)), opt(draft_->rank(i)), flag_list(draft_->flags(i)));
}

std::vector<LabelApp::Line> LabelApp::body_lines(int width, std::vector<size_t>& anchors) const {
  std::vector<Line> lines;
  lines.push_back({fmt::format("PROMPT  (id {}, {})", item().id, item().where), Style::kHeader});
  for (auto& l : wrap_text(item().prompt, width - 2)) lines.push_back({"  " + l, Style::kPlain});
  for (size_t i = 0; i < draft_->size(); ++i) {
    lines.push_back({"", Style::kPlain});
    anchors.push_back(lines.size());
    lines.push_back({response_header(i), i == selected_ ? Style::kSelected : Style::kHeader});
    for (auto& l : wrap_text(item().responses[i], width - 4)) lines.push_back({"    " + l, Style::kPlain});
  }
  lines.push_back({"", Style::kPlain});
  lines.push_back({"Comment: " + (draft_->comment.empty() ? std::string("-") : draft_->comment), Style::kDim});
  return lines;
}

std::vector<LabelApp::Line> LabelApp::flag_menu() const {
  std::vector<Line> lines = {{fmt::format("Toggle a flag of response {} (Esc: none):", selected_ + 1), Style::kHeader}};
  const auto& flags = dataprep::label_flags();
  for (size_t i = 0; i < flags.size(); ++i) {
    const bool on = draft_->flags(selected_).count(flags[i].flag) > 0;
    lines.push_back(
        {fmt::format("  {}  [{}] {:<28} {}", (i + 1) % 10, on ? "x" : " ", flags[i].name, flags[i].description),
         Style::kPlain});
  }
  return lines;
}

std::vector<LabelApp::Line> LabelApp::help_lines(int width) const {
  std::vector<Line> lines;
  for (const char* para : kHelp) {
    for (auto& l : wrap_text(para, width)) lines.push_back({std::move(l), Style::kPlain});
  }
  return lines;
}

std::vector<LabelApp::Line> LabelApp::done_lines() const {
  return {{fmt::format("All {} prompts are labelled by {} ({} records written in this session, {} skipped).", total(),
                       options_.labeller, submitted_, skipped_),
           Style::kHeader},
          {"", Style::kPlain},
          {"u undoes the last record, q quits.", Style::kPlain}};
}

LabelApp::Line LabelApp::title_line() const {
  const std::string skipped = skipped_ ? fmt::format(" ({} skipped this session)", skipped_) : "";
  return {fmt::format(" troupe label - {}/{} labelled by {}{} - {}   ? help  q quit", done_count_, total(),
                      options_.labeller, skipped, options_.output),
          Style::kTitle};
}

LabelApp::Line LabelApp::status_line() const {
  switch (mode_) {
    case Mode::kComment: return {"comment: " + comment_edit_ + "_", Style::kPlain};
    case Mode::kConfirmQuit: return {"quit and discard the judgement of this prompt? (y/n)", Style::kError};
    case Mode::kConfirmSkip: return {"skip this prompt? it is recorded as skipped (y/n)", Style::kError};
    default: return {message_, message_is_error_ ? Style::kError : Style::kPlain};
  }
}

LabelApp::Line LabelApp::hint_line() const {
  if (all_done()) return {"u undo the last record  q quit", Style::kDim};
  switch (mode_) {
    case Mode::kRank:
      return {fmt::format("rank of response {}: press 1-{} (1 = best, equal ranks = a tie), Esc cancels", selected_ + 1,
                          draft_->size()),
              Style::kDim};
    case Mode::kFlag: return {"flag: press its number, Esc cancels", Style::kDim};
    case Mode::kComment: return {"Enter keeps the comment, Esc cancels, Backspace deletes", Style::kDim};
    case Mode::kHelp: return {"Up/Down/PgUp/PgDn scroll, Esc or ? closes the help", Style::kDim};
    default:
      return {
          "<-/-> select  1-7 rate  r+N rank  +/- better/worse  f+N flag  c comment  Enter submit  S skip  u undo  ? "
          "help",
          Style::kDim};
  }
}

std::string LabelApp::draw(const Line& line, int cols) {
  static constexpr const char* kSgr[] = {"", "\x1b[7m", "\x1b[1m", "\x1b[1;7m", "\x1b[2m", "\x1b[1;31m"};
  return kSgr[static_cast<int>(line.style)] + fit_line(line.text, cols) + "\x1b[0m";
}

std::string LabelApp::render(int rows, int cols) {
  body_rows_ = std::max(1, rows - 4);
  std::vector<Line> body;
  size_t* scroll = &scroll_;
  if (mode_ == Mode::kHelp) {
    body = help_lines(cols);
    scroll = &help_scroll_;
  } else if (all_done()) {
    body = done_lines();
  } else if (mode_ == Mode::kFlag) {
    body = flag_menu();
  } else {
    std::vector<size_t> anchors;
    body = body_lines(cols, anchors);
    const size_t anchor = anchors[selected_];
    if (follow_selection_ && (anchor < scroll_ || anchor >= scroll_ + static_cast<size_t>(body_rows_))) {
      scroll_ = anchor > 0 ? anchor - 1 : 0;
    }
  }
  const size_t max_scroll = body.size() > static_cast<size_t>(body_rows_) ? body.size() - body_rows_ : 0;
  if (mode_ == Mode::kFlag) scroll = nullptr;
  const size_t top = scroll ? (*scroll = std::min(*scroll, max_scroll)) : 0;

  std::vector<Line> frame = {title_line()};
  for (int r = 0; r < body_rows_; ++r) {
    const size_t i = top + static_cast<size_t>(r);
    frame.push_back(i < body.size() ? body[i] : Line{});
  }
  const size_t last = std::min(body.size(), top + body_rows_);
  frame.push_back({fmt::format("-- lines {}-{} of {}{} --", body.empty() ? 0 : top + 1, last, body.size(),
                               last < body.size() ? ", more below (PgDn)" : ""),
                   Style::kDim});
  frame.push_back(status_line());
  frame.push_back(hint_line());
  std::string out = "\x1b[?25l";
  for (size_t r = 0; r < frame.size() && static_cast<int>(r) < rows; ++r) {
    out += fmt::format("\x1b[{};1H", r + 1) + draw(frame[r], cols) + "\x1b[K";
  }
  return out;
}

}  // namespace troupe::cli
