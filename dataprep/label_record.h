// The records of human preference labelling (`troupe label`, `troupe data agreement`, reward-model training): the
// input items (a prompt and K >= 2 responses), the InstructGPT metadata flags (Ouyang et al. 2022, appendix B), and
// one labelled record per prompt per labeller as a JSONL line, read back with errors naming file:line and key.
// Not the terminal UI (cli/label_app.h) and not the statistics (dataprep/label_agreement.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::dataprep {

constexpr int kMinRating = 1;  // the overall quality of one output, a 1-7 Likert scale
constexpr int kMaxRating = 7;

// The fixed flag vocabulary, in the order the UI numbers them (key 1..9, 0).
enum class LabelFlag {
  kFailsInstruction,    // fails to follow the instruction / task
  kInappropriate,       // inappropriate for a customer assistant
  kHallucination,       // makes up information (closed-domain hallucination)
  kHarmful,             // harmful in another way
  kSexualContent,       // contains sexual content
  kViolentContent,      // contains violent content
  kDenigrates,          // denigrates a protected class
  kEncouragesViolence,  // encourages or fails to discourage violence / abuse / terrorism / self-harm
  kHarmfulAdvice,       // gives harmful advice
  kMoralJudgement,      // expresses moral judgement
};

struct FlagInfo {
  LabelFlag flag;
  const char* name;         // the record's name ("hallucination")
  const char* description;  // one line for the UI
};
const std::vector<FlagInfo>& label_flags();
const char* flag_name(LabelFlag flag);
std::optional<LabelFlag> parse_label_flag(std::string_view name);

// One prompt to label, from a line {"id": "...", "prompt": "...", "responses": ["...", ...]} (id defaults to the
// 1-based line number).
struct LabelItem {
  std::string id;
  std::string prompt;
  std::vector<std::string> responses;  // (K), K >= 2
  std::string where;                   // "file:line"
};
// Every item of a JSONL file (blank lines skipped). DataError naming file:line and the key on a malformed line or a
// repeated id; IoError when the file cannot be read.
std::vector<LabelItem> read_label_items(const std::string& path);

// One labeller's judgement of one item. Ranks are dense: 1 = best, equal numbers = a tie, every rank 1..max used.
struct LabelRecord {
  std::string id;
  std::string labeller;
  std::string prompt;
  std::vector<std::string> responses;         // (K)
  bool skipped = false;                       // skipped: no ranks, ratings or flags
  std::vector<int> ranks;                     // (K) 1 = best
  std::vector<int> ratings;                   // (K) 1..7
  std::vector<std::vector<LabelFlag>> flags;  // (K) in vocabulary order
  std::string comment;
  std::string time;    // ISO-8601 UTC, when it was submitted
  double seconds = 0;  // time spent on the item
  std::string where;   // "file:line" when read from a file
};

// Why `ranks` (of K responses) is not a dense ranking (each in 1..K, every rank from 1 to the largest used), or
// nullopt when it is one.
std::optional<std::string> ranking_problem(const std::vector<int>& ranks);

// The record as one JSON line (with the trailing newline), keys in the documented order.
std::string record_json_line(const LabelRecord& record);
// Parses one line; DataError "where: key: what was expected".
LabelRecord parse_label_record(std::string_view line, const std::string& where);
// Every record of a JSONL file (blank lines skipped); none when the file does not exist. DataError on a malformed
// line, including a last line without its newline (a write that was cut off).
std::vector<LabelRecord> read_label_records(const std::string& path);
// Where an appended line landed: bytes [start, end) of the file.
struct AppendedLine {
  int64_t start = 0;
  int64_t end = 0;
};
// Appends one line (as record_json_line makes it) with a single O_APPEND write and an fsync, so that a crash never
// leaves half a line, under an exclusive flock (taken with LOCK_NB, retried for up to kLockWaitSeconds) so that
// several labellers can append to one file and retract_line can check that a line is still the last one. IoError on
// failure, TimeoutError when the lock stays taken.
AppendedLine append_record_line(const std::string& path, const std::string& line);
// Undo of an append: removes `line` at `where` (truncating the file to where.start) if it is still the file's last
// line, byte for byte, under the same lock; false (and nothing changed) when anything was appended after it.
bool retract_line(const std::string& path, const AppendedLine& where, const std::string& line);
constexpr int kLockWaitSeconds = 10;

// The current time as ISO-8601 UTC ("2026-05-01T12:34:56Z").
std::string utc_now_iso8601();

}  // namespace troupe::dataprep
