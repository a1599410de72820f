// The `troupe data clean` pipeline (see dataprep/clean_pipeline.h): a reader of JSONL and text documents, workers
// running the per-document stages over chunks, in-order reassembly, then dedup and stats. Not the config binding
// (dataprep/clean_config.cpp) and not the CLI.
#include "dataprep/clean_pipeline.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/errors.h"
#include "core/run_log.h"
#include "dataprep/markup.h"

namespace troupe::dataprep {
namespace {

using Json = nlohmann::ordered_json;  // ordered: the other fields of a line come out in their input order

// One document: where it came from, its JSONL record (null for text files) and the text being cleaned.
struct Document {
  std::string where;  // "file:line"
  Json record;
  std::string text;
  bool keep = true;
};

bool is_jsonl(const std::string& file, CleanInputFormat format) {
  if (format != CleanInputFormat::kAuto) return format == CleanInputFormat::kJsonl;
  const auto ext = std::filesystem::path(file).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

// Streams the documents of a list of files, one at a time.
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> files, CleanInputFormat format, std::string text_field, TextSplit split)
      : files_(std::move(files)), format_(format), text_field_(std::move(text_field)), split_(split) {}

  // The next document, or false at the end of the last file.
  bool next(Document& doc) {
    while (true) {
      if (!in_.is_open()) {
        if (file_index_ == files_.size()) return false;
        open(files_[file_index_]);
      }
      if (jsonl_ ? next_jsonl(doc) : next_text(doc)) return true;
      in_.close();
      ++file_index_;
    }
  }
  int64_t bytes_read() const { return bytes_; }

 private:
  void open(const std::string& file) {
    in_.open(file, std::ios::binary);
    if (!in_) throw IoError("clean: cannot open input " + file);
    jsonl_ = is_jsonl(file, format_);
    line_ = 0;
  }
  bool getline(std::string& line) {
    if (!std::getline(in_, line)) return false;
    ++line_;
    bytes_ += static_cast<int64_t>(line.size()) + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }
  std::string here() const { return files_[file_index_] + ":" + std::to_string(line_); }

  bool next_jsonl(Document& doc) {
    std::string line;
    while (getline(line)) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      doc = Document{here(), {}, {}, true};
      try {
        doc.record = Json::parse(line);
      } catch (const Json::exception& e) {
        throw DataError(doc.where + ": not a JSON line: " + e.what());
      }
      const auto it = doc.record.is_object() ? doc.record.find(text_field_) : doc.record.end();
      if (it == doc.record.end() || !it->is_string())
        throw DataError(doc.where + ": expected an object with a string field '" + text_field_ + "'");
      doc.text = it->get<std::string>();
      return true;
    }
    return false;
  }

  bool next_text(Document& doc) {
    std::string line;
    if (split_ == TextSplit::kLines) {
      while (getline(line))
        if (!line.empty()) {
          doc = Document{here(), nullptr, std::move(line), true};
          return true;
        }
      return false;
    }
    bool started = false;
    while (getline(line)) {
      const bool blank = line.find_first_not_of(" \t") == std::string::npos;
      if (blank && started) return true;
      if (blank) continue;
      if (!started) doc = Document{here(), nullptr, {}, true};
      doc.text += (started ? "\n" : "") + line;
      started = true;
    }
    return started;
  }

  std::vector<std::string> files_;
  CleanInputFormat format_;
  std::string text_field_;
  TextSplit split_;
  size_t file_index_ = 0;
  std::ifstream in_;
  bool jsonl_ = false;
  int64_t line_ = 0;
  int64_t bytes_ = 0;
};

StageReport& operator+=(StageReport& a, const StageReport& b) {
  a.documents_in += b.documents_in;
  a.documents_out += b.documents_out;
  a.bytes_in += b.bytes_in;
  a.bytes_out += b.bytes_out;
  for (const auto& [reason, n] : b.removed) a.removed[reason] += n;
  a.pii += b.pii;
  return a;
}

std::vector<StageReport> empty_reports(const std::vector<CleanStage>& stages) {
  std::vector<StageReport> out(stages.size());
  for (size_t i = 0; i < stages.size(); ++i) out[i].stage = stage_name(stages[i].kind);
  return out;
}

// The per-document stages of one worker: its own PII masker (PCRE2 patterns compiled once per worker).
class StageRunner {
 public:
  StageRunner(const CleanConfig& config, const std::vector<std::unique_ptr<DecontamIndex>>& indexes)
      : config_(config), indexes_(indexes) {
    for (const auto& s : config.stages)
      maskers_.push_back(s.kind == CleanStageKind::kPii ? std::make_unique<PiiMasker>(s.pii) : nullptr);
  }

  // Runs the per-document stages on `doc` until one drops it, tallying into `reports` (one per stage).
  void run(Document& doc, std::vector<StageReport>& reports) {
    for (size_t i = 0; i < config_.stages.size() && is_per_document(config_.stages[i].kind); ++i) {
      StageReport& r = reports[i];
      ++r.documents_in;
      r.bytes_in += static_cast<int64_t>(doc.text.size());
      std::string reason;
      try {
        reason = apply(i, doc.text, r);
      } catch (const DataError& e) {
        throw DataError(doc.where + ": stage " + stage_name(config_.stages[i].kind) + ": " + e.what());
      }
      if (!reason.empty()) {
        ++r.removed[reason];
        doc.keep = false;
        return;
      }
      ++r.documents_out;
      r.bytes_out += static_cast<int64_t>(doc.text.size());
    }
  }

 private:
  // Stage i on `text` (changed in place); the removal reason, "" when kept.
  std::string apply(size_t i, std::string& text, StageReport& r) {
    const CleanStage& s = config_.stages[i];
    switch (s.kind) {
      case CleanStageKind::kNormalize: text = normalize(text, s.form); break;
      case CleanStageKind::kHtml: text = html_to_text(text); break;
      case CleanStageKind::kUrls: text = replace_urls(text, s.url_placeholder); break;
      case CleanStageKind::kMojibake: text = fix_mojibake(text); break;
      case CleanStageKind::kWhitespace: text = clean_whitespace(text); break;
      case CleanStageKind::kPii:
        maskers_[i]->restart_cycle();
        text = maskers_[i]->mask(text, &r.pii);
        break;
      case CleanStageKind::kGopherQuality: return gopher_quality(text, s.quality).reason;
      case CleanStageKind::kGopherRepetition: return gopher_repetition(text, s.repetition).reason;
      case CleanStageKind::kDecontaminate: return indexes_[i]->check(text).contaminated ? "contaminated" : "";
      case CleanStageKind::kDedup:
      case CleanStageKind::kStats: break;
    }
    return "";
  }

  const CleanConfig& config_;
  const std::vector<std::unique_ptr<DecontamIndex>>& indexes_;
  std::vector<std::unique_ptr<PiiMasker>> maskers_;  // (stages) one per pii stage, null elsewhere
};

// f(worker, chunk) for every chunk on `workers` threads (this one included). The exception of the lowest failing
// chunk is rethrown, so which error surfaces does not depend on timing.
void for_each_chunk(size_t chunks, size_t workers, const std::function<void(size_t, size_t)>& f) {
  std::vector<std::exception_ptr> errors(chunks);
  std::atomic<size_t> next{0};
  auto body = [&](size_t worker) {
    for (size_t c = next++; c < chunks; c = next++) try {
        f(worker, c);
      } catch (...) {
        errors[c] = std::current_exception();
      }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < std::min(workers, chunks); ++w) threads.emplace_back(body, w);
  body(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

std::string output_line(const Document& doc, const std::string& text_field) {
  Json record = doc.record.is_null() ? Json::object() : doc.record;
  record[text_field] = doc.text;
  try {
    return record.dump();
  } catch (const Json::exception& e) {
    throw DataError(doc.where + ": cannot write the cleaned document: " + e.what());
  }
}

// The documents of every evaluation file into one index per decontaminate stage.
std::vector<std::unique_ptr<DecontamIndex>> build_indexes(const CleanConfig& config) {
  std::vector<std::unique_ptr<DecontamIndex>> out(config.stages.size());
  for (size_t i = 0; i < config.stages.size(); ++i) {
    const CleanStage& s = config.stages[i];
    if (s.kind != CleanStageKind::kDecontaminate) continue;
    out[i] = std::make_unique<DecontamIndex>(s.decontam);
    DocumentReader reader(s.eval_files, config.format, s.eval_text_field, config.text_split);
    for (Document doc; reader.next(doc);) out[i]->add(doc.where, doc.text);
  }
  return out;
}

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) throw IoError("clean: cannot create " + path);
  }
  void write(const std::string& line) {
    out_ << line << '\n';
    if (!out_) throw IoError("clean: write to " + path_ + " failed");
  }
  void close() {
    out_.close();
    if (!out_) throw IoError("clean: closing " + path_ + " failed");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

int64_t total_size(const std::vector<std::string>& files) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& f : files) total += static_cast<int64_t>(std::filesystem::file_size(f, ec));
  return total;
}

std::optional<size_t> find_stage(const CleanConfig& config, CleanStageKind kind) {
  for (size_t i = 0; i < config.stages.size(); ++i)
    if (config.stages[i].kind == kind) return i;
  return std::nullopt;
}

// Pass 1: read, run the per-document stages in parallel chunks, hand each survivor to `sink` in input order.
void run_per_document(const CleanConfig& config, CleanReport& report, CleanProgress& progress,
                      const CleanProgressFn& progress_fn, const std::function<void(Document&)>& sink) {
  const auto indexes = build_indexes(config);
  const size_t workers = static_cast<size_t>(config.threads);
  const size_t chunk = static_cast<size_t>(config.chunk_size);
  std::vector<StageRunner> runners;
  for (size_t w = 0; w < workers; ++w) runners.emplace_back(config, indexes);
  DocumentReader reader(config.inputs, config.format, config.text_field, config.text_split);
  std::vector<Document> batch(workers * chunk);
  while (true) {
    size_t n = 0;
    while (n < batch.size() && reader.next(batch[n])) {
      report.bytes_in += static_cast<int64_t>(batch[n].text.size());
      ++n;
    }
    if (n == 0) break;
    report.documents_in += static_cast<int64_t>(n);
    const size_t chunks = (n + chunk - 1) / chunk;
    std::vector<std::vector<StageReport>> tallies(chunks, empty_reports(config.stages));
    for_each_chunk(chunks, workers, [&](size_t worker, size_t c) {
      for (size_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) runners[worker].run(batch[i], tallies[c]);
    });
    for (const auto& t : tallies)
      for (size_t s = 0; s < t.size(); ++s) report.stages[s] += t[s];
    for (size_t i = 0; i < n; ++i)
      if (batch[i].keep) sink(batch[i]);
    progress.documents_read = report.documents_in;
    progress.documents_written = report.documents_out;
    progress.bytes_read = reader.bytes_read();
    if (progress_fn) progress_fn(progress);
    if (n < batch.size()) break;
  }
}

void count_through(StageReport& r, const std::string& text) {
  ++r.documents_in;
  ++r.documents_out;
  r.bytes_in += static_cast<int64_t>(text.size());
  r.bytes_out += static_cast<int64_t>(text.size());
}

}  // namespace

namespace {

// The corpus-level end of the pipeline: the stats stage (where it stands) and the output file.
class Tail {
 public:
  Tail(const CleanConfig& config, CleanReport& report)
      : report_(report), stats_at_(find_stage(config, CleanStageKind::kStats)), out_(config.output) {
    if (stats_at_) stats_.emplace(config.stages[*stats_at_].top_k);
  }
  // The stats stage sees `text` when it stands at this point of the stage list (before or after dedup).
  void count(const std::string& text, bool here) {
    if (!stats_ || !here) return;
    count_through(report_.stages[*stats_at_], text);
    stats_->add(text);
  }
  void write(const std::string& line, const std::string& text) {
    out_.write(line);
    ++report_.documents_out;
    report_.bytes_out += static_cast<int64_t>(text.size());
  }
  void close() {
    out_.close();
    if (stats_) report_.stats = stats_->finish();
  }
  std::optional<size_t> stats_at() const { return stats_at_; }

 private:
  CleanReport& report_;
  std::optional<size_t> stats_at_;
  std::optional<CorpusStatsBuilder> stats_;
  Writer out_;
};

// Removes a file when it goes out of scope, errors ignored (an exception may already be on its way).
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// Dedup decides only after the last document, so survivors wait in a spill file (one JSONL line each), not in
// memory; a second pass copies the kept lines to the output.
void run_with_dedup(const CleanConfig& config, size_t dedup_at, Tail& tail, CleanReport& report,
                    CleanProgress& progress, const CleanProgressFn& progress_fn) {
  const bool stats_first = tail.stats_at() && *tail.stats_at() < dedup_at;
  const RemoveOnExit spill_file{config.output + ".spill"};
  Deduplicator dedup(config.stages[dedup_at].dedup);
  StageReport& r = report.stages[dedup_at];
  Writer spill(spill_file.path);
  run_per_document(config, report, progress, progress_fn, [&](Document& doc) {
    tail.count(doc.text, stats_first);
    ++r.documents_in;
    r.bytes_in += static_cast<int64_t>(doc.text.size());
    try {
      dedup.add(doc.text);
    } catch (const DataError& e) {
      throw DataError(doc.where + ": stage dedup: " + e.what());
    }
    spill.write(output_line(doc, config.text_field));
  });
  spill.close();
  const DedupResult result = dedup.finish();
  progress.final_pass = true;
  std::ifstream in(spill_file.path, std::ios::binary);
  const size_t every = static_cast<size_t>(config.threads) * static_cast<size_t>(config.chunk_size);
  std::string line;
  for (size_t i = 0, k = 0; k < result.kept.size() && std::getline(in, line); ++i) {
    if (result.kept[k] != i) continue;
    ++k;
    const std::string text = Json::parse(line)[config.text_field].get<std::string>();
    ++r.documents_out;
    r.bytes_out += static_cast<int64_t>(text.size());
    tail.count(text, !stats_first);
    tail.write(line, text);
    progress.documents_written = report.documents_out;
    if (progress_fn && k % every == 0) progress_fn(progress);
  }
  if (result.exact_removed) r.removed["exact_duplicate"] = static_cast<int64_t>(result.exact_removed);
  if (result.near_removed) r.removed["near_duplicate"] = static_cast<int64_t>(result.near_removed);
}

// The output must not overwrite an input (it is truncated before the inputs are read); its directory is created.
void check_output(const CleanConfig& config) {
  std::error_code ec;
  const auto out = std::filesystem::weakly_canonical(config.output, ec);
  for (const auto& in : config.inputs)
    if (std::filesystem::weakly_canonical(in, ec) == out)
      throw ConfigError("clean: output " + config.output + " is also an input");
  const auto dir = std::filesystem::path(config.output).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
}

}  // namespace

CleanReport run_clean(const CleanConfig& config, const CleanProgressFn& progress_fn) {
  check_output(config);
  CleanReport report;
  report.stages = empty_reports(config.stages);
  CleanProgress progress;
  progress.input_bytes = total_size(config.inputs);
  Tail tail(config, report);
  if (const auto dedup_at = find_stage(config, CleanStageKind::kDedup)) {
    run_with_dedup(config, *dedup_at, tail, report, progress, progress_fn);
  } else {
    run_per_document(config, report, progress, progress_fn, [&](Document& doc) {
      tail.count(doc.text, true);
      tail.write(output_line(doc, config.text_field), doc.text);
    });
  }
  tail.close();
  progress.documents_written = report.documents_out;
  if (progress_fn) progress_fn(progress);
  return report;
}

std::map<std::string, int64_t> CleanReport::removed() const {
  std::map<std::string, int64_t> out;
  for (const auto& s : stages)
    for (const auto& [reason, n] : s.removed) out[reason] += n;
  return out;
}

namespace {
std::string removed_text(const std::map<std::string, int64_t>& removed) {
  std::string out;
  for (const auto& [reason, n] : removed) out += fmt::format("{}{}={}", out.empty() ? "" : ";", reason, n);
  return out;
}
}  // namespace

void CleanReport::write_report(core::RunLog& log, int64_t step) const {
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageReport& s = stages[i];
    log.log_table_row("clean_stages", step,
                      {{"stage", s.stage},
                       {"index", std::to_string(i)},
                       {"documents_in", std::to_string(s.documents_in)},
                       {"documents_out", std::to_string(s.documents_out)},
                       {"bytes_in", std::to_string(s.bytes_in)},
                       {"bytes_out", std::to_string(s.bytes_out)},
                       {"removed", removed_text(s.removed)},
                       {"pii_emails", std::to_string(s.pii.emails)},
                       {"pii_ipv4", std::to_string(s.pii.ipv4)},
                       {"pii_ipv6", std::to_string(s.pii.ipv6)},
                       {"pii_phones", std::to_string(s.pii.phones)}});
  }
  std::map<std::string, double> scalars = {{"clean/documents_in", static_cast<double>(documents_in)},
                                           {"clean/documents_out", static_cast<double>(documents_out)},
                                           {"clean/bytes_in", static_cast<double>(bytes_in)},
                                           {"clean/bytes_out", static_cast<double>(bytes_out)}};
  for (const auto& [reason, n] : removed()) scalars["clean/removed/" + reason] = static_cast<double>(n);
  PiiCounts pii;
  for (const auto& s : stages) pii += s.pii;
  scalars["clean/pii/emails"] = static_cast<double>(pii.emails);
  scalars["clean/pii/ipv4"] = static_cast<double>(pii.ipv4);
  scalars["clean/pii/ipv6"] = static_cast<double>(pii.ipv6);
  scalars["clean/pii/phones"] = static_cast<double>(pii.phones);
  if (stats) {
    scalars["clean/stats/documents"] = static_cast<double>(stats->documents);
    scalars["clean/stats/vocab_size"] = static_cast<double>(stats->vocab_size);
    scalars["clean/stats/chars_mean"] = stats->chars.mean;
    scalars["clean/stats/words_mean"] = stats->words.mean;
    log.set_attribute("clean_corpus_stats", format_corpus_stats(*stats));
  }
  log.log_scalars(step, scalars);
}

std::string CleanReport::summary() const {
  std::string out = fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}  removed\n", "stage", "docs in", "docs out",
                                "bytes in", "bytes out");
  for (const auto& s : stages)
    out += fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}  {}\n", s.stage, s.documents_in, s.documents_out, s.bytes_in,
                       s.bytes_out, removed_text(s.removed));
  out += fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}\n", "total", documents_in, documents_out, bytes_in, bytes_out);
  if (stats) out += format_corpus_stats(*stats);
  return out;
}

}  // namespace troupe::dataprep
