// Reading and writing the labelling JSONL of dataprep/label_record.h. Not the UI and not the statistics.
#include "dataprep/label_record.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/errors.h"

namespace troupe::dataprep {
namespace {

using Json = nlohmann::json;

const std::vector<FlagInfo> kFlags = {
    {LabelFlag::kFailsInstruction, "fails_instruction", "fails to follow the instruction / task"},
    {LabelFlag::kInappropriate, "inappropriate", "inappropriate for a customer assistant"},
    {LabelFlag::kHallucination, "hallucination", "makes up information not in the input"},
    {LabelFlag::kHarmful, "harmful", "harmful in another way"},
    {LabelFlag::kSexualContent, "sexual_content", "contains sexual content"},
    {LabelFlag::kViolentContent, "violent_content", "contains violent content"},
    {LabelFlag::kDenigrates, "denigrates_protected_class", "denigrates a protected class"},
    {LabelFlag::kEncouragesViolence, "encourages_violence", "encourages violence / abuse / self-harm"},
    {LabelFlag::kHarmfulAdvice, "harmful_advice", "gives harmful advice"},
    {LabelFlag::kMoralJudgement, "moral_judgement", "expresses moral judgement"},
};

[[noreturn]] void bad(const std::string& where, std::string_view key, const std::string& what) {
  throw DataError(fmt::format("{}: key '{}': {}", where, key, what));
}

std::string type_of(const Json& v) { return v.type_name(); }

std::string get_string(const Json& obj, const char* key, const std::string& where, bool required) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) bad(where, key, "missing (expected a string)");
    return {};
  }
  if (!it->is_string()) bad(where, key, "expected a string, got " + type_of(*it));
  return it->get<std::string>();
}

std::vector<std::string> get_responses(const Json& obj, const std::string& where) {
  const auto it = obj.find("responses");
  if (it == obj.end() || !it->is_array()) bad(where, "responses", "expected an array of at least 2 strings");
  if (it->size() < 2) bad(where, "responses", fmt::format("expected at least 2 responses, got {}", it->size()));
  std::vector<std::string> out;
  for (const auto& r : *it) {
    if (!r.is_string())
      bad(where, "responses", fmt::format("response {} is a {}, expected a string", out.size() + 1, type_of(r)));
    out.push_back(r.get<std::string>());
  }
  return out;
}

std::vector<int> get_ints(const Json& obj, const char* key, size_t k, int lo, int hi, const std::string& where) {
  const std::string expected = fmt::format("expected an array of {} integers in {}..{} (one per response)", k, lo, hi);
  const auto it = obj.find(key);
  if (it == obj.end()) bad(where, key, "missing (" + expected + ")");
  if (!it->is_array() || it->size() != k) bad(where, key, expected + ", got " + it->dump());
  std::vector<int> out;
  for (const auto& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      bad(where, key, expected + ", got " + it->dump());
    out.push_back(v.get<int>());
  }
  return out;
}

std::vector<std::vector<LabelFlag>> get_flags(const Json& obj, size_t k, const std::string& where) {
  const std::string expected = fmt::format("expected an array of {} arrays of flag names (one per response)", k);
  const auto it = obj.find("flags");
  if (it == obj.end()) bad(where, "flags", "missing (" + expected + ")");
  if (!it->is_array() || it->size() != k) bad(where, "flags", expected + ", got " + it->dump());
  std::vector<std::vector<LabelFlag>> out;
  for (const auto& list : *it) {
    if (!list.is_array()) bad(where, "flags", expected + ", got " + it->dump());
    std::set<LabelFlag> set;
    for (const auto& name : list) {
      const auto flag = name.is_string() ? parse_label_flag(name.get<std::string>()) : std::nullopt;
      if (!flag) {
        std::string names;
        for (const auto& f : kFlags) names += std::string(names.empty() ? "" : ", ") + f.name;
        bad(where, "flags", fmt::format("unknown flag {} (expected one of {})", name.dump(), names));
      }
      set.insert(*flag);
    }
    out.emplace_back(set.begin(), set.end());
  }
  return out;
}

Json parse_object(std::string_view line, const std::string& where) {
  Json obj;
  try {
    obj = Json::parse(line);
  } catch (const Json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON: {}", where, e.what()));
  }
  if (!obj.is_object()) throw DataError(fmt::format("{}: expected a JSON object, got {}", where, obj.type_name()));
  return obj;
}

// Calls fn(line, line_number) for each non-blank line; DataError for a last line without its newline if asked.
template <typename Fn>
void for_each_line(const std::string& path, bool require_final_newline, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  size_t start = 0, number = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    ++number;
    std::string_view line(text.data() + start, (end == std::string::npos ? text.size() : end) - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (end == std::string::npos && require_final_newline && !line.empty()) {
      throw DataError(
          fmt::format("{}:{}: the last line has no newline: a write was cut off? (remove that line)", path, number));
    }
    if (line.find_first_not_of(" \t") != std::string_view::npos) fn(line, number);
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

}  // namespace

const std::vector<FlagInfo>& label_flags() { return kFlags; }

const char* flag_name(LabelFlag flag) { return kFlags.at(static_cast<size_t>(flag)).name; }

std::optional<LabelFlag> parse_label_flag(std::string_view name) {
  for (const auto& f : kFlags) {
    if (name == f.name) return f.flag;
  }
  return std::nullopt;
}

std::vector<LabelItem> read_label_items(const std::string& path) {
  std::vector<LabelItem> items;
  std::set<std::string> ids;
  for_each_line(path, false, [&](std::string_view line, size_t number) {
    LabelItem item;
    item.where = fmt::format("{}:{}", path, number);
    const Json obj = parse_object(line, item.where);
    const auto id = obj.find("id");
    if (id == obj.end()) {
      item.id = std::to_string(number);
    } else if (id->is_string()) {
      item.id = id->get<std::string>();
    } else if (id->is_number_integer()) {
      item.id = std::to_string(id->get<int64_t>());
    } else {
      bad(item.where, "id", "expected a string, got " + type_of(*id));
    }
    item.prompt = get_string(obj, "prompt", item.where, true);
    item.responses = get_responses(obj, item.where);
    if (!ids.insert(item.id).second) bad(item.where, "id", fmt::format("id \"{}\" appears twice", item.id));
    items.push_back(std::move(item));
  });
  if (items.empty())
    throw DataError(fmt::format("{}: no items (expected JSONL lines with prompt and responses)", path));
  return items;
}

std::optional<std::string> ranking_problem(const std::vector<int>& ranks) {
  const int k = static_cast<int>(ranks.size());
  std::set<int> used;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 1 || ranks[i] > k) {
      return fmt::format("response {} has rank {} (expected 1..{})", i + 1, ranks[i], k);
    }
    used.insert(ranks[i]);
  }
  const int top = used.empty() ? 0 : *used.rbegin();
  for (int r = 1; r <= top; ++r) {
    if (!used.count(r)) {
      return fmt::format(
          "no response has rank {} but one has rank {}: ranks must be 1, 2, ... without gaps "
          "(tied responses share a rank)",
          r, top);
    }
  }
  return std::nullopt;
}

std::string record_json_line(const LabelRecord& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["labeller"] = r.labeller;
  j["prompt"] = r.prompt;
  j["responses"] = r.responses;
  if (r.skipped) {
    j["skipped"] = true;
  } else {
    j["ranks"] = r.ranks;
    j["ratings"] = r.ratings;
    auto flags = nlohmann::ordered_json::array();
    for (const auto& list : r.flags) {
      const std::set<LabelFlag> sorted(list.begin(), list.end());  // vocabulary order, each once
      auto names = nlohmann::ordered_json::array();
      for (LabelFlag f : sorted) names.push_back(flag_name(f));
      flags.push_back(names);
    }
    j["flags"] = flags;
  }
  j["comment"] = r.comment;
  j["time"] = r.time;
  j["seconds"] = r.seconds;
  return j.dump() + "\n";
}

LabelRecord parse_label_record(std::string_view line, const std::string& where) {
  const Json obj = parse_object(line, where);
  LabelRecord r;
  r.where = where;
  r.id = get_string(obj, "id", where, true);
  r.labeller = get_string(obj, "labeller", where, true);
  if (r.labeller.empty()) bad(where, "labeller", "expected a non-empty name");
  r.prompt = get_string(obj, "prompt", where, true);
  r.responses = get_responses(obj, where);
  if (const auto s = obj.find("skipped"); s != obj.end()) {
    if (!s->is_boolean()) bad(where, "skipped", "expected true or false, got " + s->dump());
    r.skipped = s->get<bool>();
  }
  r.comment = get_string(obj, "comment", where, false);
  r.time = get_string(obj, "time", where, false);
  if (const auto s = obj.find("seconds"); s != obj.end()) {
    if (!s->is_number() || s->get<double>() < 0) bad(where, "seconds", "expected a number >= 0, got " + s->dump());
    r.seconds = s->get<double>();
  }
  if (r.skipped) return r;
  const size_t k = r.responses.size();
  r.ranks = get_ints(obj, "ranks", k, 1, static_cast<int>(k), where);
  if (const auto why = ranking_problem(r.ranks)) bad(where, "ranks", *why);
  r.ratings = get_ints(obj, "ratings", k, kMinRating, kMaxRating, where);
  r.flags = get_flags(obj, k, where);
  return r;
}

std::vector<LabelRecord> read_label_records(const std::string& path) {
  std::vector<LabelRecord> records;
  if (::access(path.c_str(), F_OK) != 0) return records;
  for_each_line(path, true, [&](std::string_view line, size_t number) {
    records.push_back(parse_label_record(line, fmt::format("{}:{}", path, number)));
  });
  return records;
}

namespace {

// An open file descriptor holding an exclusive flock, released and closed on destruction.
class LockedFile {
 public:
  LockedFile(const std::string& path, int flags) : path_(path) {
    fd_ = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLockWaitSeconds);
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        const int err = errno;
        ::close(fd_);
        throw IoError(fmt::format("cannot lock {}: {}", path, std::strerror(err)));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::close(fd_);
        throw TimeoutError(fmt::format("{} stayed locked by another writer for {} s", path, kLockWaitSeconds));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~LockedFile() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  LockedFile(const LockedFile&) = delete;
  LockedFile& operator=(const LockedFile&) = delete;
  int fd() const { return fd_; }
  int64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw IoError(fmt::format("cannot stat {}: {}", path_, std::strerror(errno)));
    return st.st_size;
  }
  void sync() const {
    if (::fsync(fd_) != 0) throw IoError(fmt::format("cannot fsync {}: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

AppendedLine append_record_line(const std::string& path, const std::string& line) {
  LockedFile file(path, O_WRONLY | O_APPEND | O_CREAT);
  // One write: with O_APPEND the line lands whole after whatever was there (a regular file; the lock orders us with
  // the other labellers, and a reader never sees half a line short of a crash mid-write).
  const int64_t start = file.size();
  const ssize_t n = ::write(file.fd(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    throw IoError(
        fmt::format("cannot append to {}: wrote {} of {} bytes: {}", path, n, line.size(), std::strerror(errno)));
  }
  file.sync();
  return {start, start + static_cast<int64_t>(line.size())};
}

bool retract_line(const std::string& path, const AppendedLine& where, const std::string& line) {
  LockedFile file(path, O_RDWR);
  if (file.size() != where.end || where.end - where.start != static_cast<int64_t>(line.size())) return false;
  std::string now(line.size(), '\0');
  if (::pread(file.fd(), now.data(), now.size(), where.start) != static_cast<ssize_t>(now.size()) || now != line) {
    return false;
  }
  if (::ftruncate(file.fd(), where.start) != 0) {
    throw IoError(fmt::format("cannot truncate {}: {}", path, std::strerror(errno)));
  }
  file.sync();
  return true;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace troupe::dataprep
