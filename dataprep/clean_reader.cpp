// Implementation of dataprep/clean_reader.h: line-based JSONL and text reading, token files cut at the separator, and
// the prefetching reader thread with its bounded queue.
#include "dataprep/clean_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/token_file.h"

namespace troupe::dataprep {

CleanInputFormat input_format(const std::string& file, CleanInputFormat format) {
  if (format != CleanInputFormat::kAuto) return format;
  const auto ext = std::filesystem::path(file).extension().string();
  if (ext == ".jsonl" || ext == ".json") return CleanInputFormat::kJsonl;
  if (ext == ".bin") return CleanInputFormat::kTokens;
  return CleanInputFormat::kText;
}

DocumentReader::DocumentReader(std::vector<std::string> files, SourceOptions options)
    : files_(std::move(files)), options_(options) {}
DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;

bool DocumentReader::next(RawDocument& doc) {
  while (true) {
    if (!open_) {
      if (file_index_ == files_.size()) return false;
      open(files_[file_index_]);
    }
    bool got = false;
    switch (current_) {
      case CleanInputFormat::kJsonl: got = next_jsonl(doc); break;
      case CleanInputFormat::kTokens: got = next_tokens(doc); break;
      default: got = next_text(doc); break;
    }
    if (got) return true;
    close();
    ++file_index_;
  }
}

void DocumentReader::open(const std::string& file) {
  current_ = input_format(file, options_.format);
  line_ = 0;
  if (current_ == CleanInputFormat::kTokens) {
    if (options_.tokenizer == nullptr)
      throw ConfigError("clean: input " + file + " is a token file; set `tokenizer` to decode it");
    tokens_ = std::make_unique<tokenizers::TokenFile>(file);
    token_pos_ = 0;
    token_separator_ = options_.separator ? std::optional<int64_t>(*options_.separator) : tokens_->info().separator;
  } else {
    in_ = std::make_unique<std::ifstream>(file, std::ios::binary);
    if (!*in_) throw IoError("clean: cannot open input " + file);
  }
  open_ = true;
}

void DocumentReader::close() {
  in_.reset();
  tokens_.reset();
  open_ = false;
}

bool DocumentReader::getline(std::string& line) {
  if (!std::getline(*in_, line)) return false;
  ++line_;
  bytes_ += static_cast<int64_t>(line.size()) + 1;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::string DocumentReader::here() const { return files_[file_index_] + ":" + std::to_string(line_); }

bool DocumentReader::next_jsonl(RawDocument& doc) {
  std::string line;
  while (getline(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    doc = RawDocument{here(), CleanInputFormat::kJsonl, std::move(line), {}};
    return true;
  }
  return false;
}

bool DocumentReader::next_text(RawDocument& doc) {
  std::string line;
  if (options_.split == TextSplit::kLines) {
    while (getline(line))
      if (!line.empty()) {
        doc = RawDocument{here(), CleanInputFormat::kText, std::move(line), {}};
        return true;
      }
    return false;
  }
  bool started = false;
  while (getline(line)) {
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (blank && started) return true;
    if (blank) continue;
    if (!started) doc = RawDocument{here(), CleanInputFormat::kText, {}, {}};
    doc.content += (started ? "\n" : "") + line;
    started = true;
  }
  return started;
}

// A document is the ids up to the next separator (left out); ids after the last separator are a last document, and
// empty documents (two separators in a row) are skipped. A file without a separator is one document.
bool DocumentReader::next_tokens(RawDocument& doc) {
  const uint64_t count = tokens_->size();
  const int width = tokens_->info().width();
  while (token_pos_ < count) {
    std::vector<int> ids;
    while (token_pos_ < count) {  // the map's ids one at a time: no copy of the file
      const int64_t id = (*tokens_)[token_pos_++];
      bytes_ += width;
      if (token_separator_ && id == *token_separator_) break;
      ids.push_back(static_cast<int>(id));
    }
    ++line_;  // the document number
    if (ids.empty()) continue;
    doc = RawDocument{
        files_[file_index_] + ":document " + std::to_string(line_), CleanInputFormat::kTokens, {}, std::move(ids)};
    return true;
  }
  return false;
}

ParsedDocument parse_document(RawDocument&& doc, const SourceOptions& options) {
  ParsedDocument out{std::move(doc.where), nullptr, {}};
  if (doc.format == CleanInputFormat::kText) {
    out.text = std::move(doc.content);
  } else if (doc.format == CleanInputFormat::kTokens) {
    try {
      out.text = options.tokenizer->decode_lossy_utf8(doc.ids);
    } catch (const DataError& e) {
      throw DataError(out.where + ": " + e.what());
    }
  } else {
    try {
      out.record = nlohmann::ordered_json::parse(doc.content);
    } catch (const nlohmann::ordered_json::exception& e) {
      throw DataError(out.where + ": not a JSON line: " + e.what());
    }
    const auto it = out.record.is_object() ? out.record.find(options.text_field) : out.record.end();
    if (it == out.record.end() || !it->is_string())
      throw DataError(out.where + ": expected an object with a string field '" + options.text_field + "'");
    out.text = std::move(it->get_ref<std::string&>());
  }
  return out;
}

BatchPrefetcher::BatchPrefetcher(DocumentReader reader, size_t batch_size, size_t depth)
    : reader_(std::move(reader)), batch_size_(std::max<size_t>(batch_size, 1)), depth_(std::max<size_t>(depth, 1)) {
  thread_ = std::thread([this] { produce(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

// Reads batches until the inputs end, a read fails or the consumer goes away. The last batch queued is short (maybe
// empty) or carries the error.
void BatchPrefetcher::produce() {
  while (true) {
    Batch batch;
    try {
      batch.docs.resize(batch_size_);
      size_t n = 0;
      while (n < batch_size_ && reader_.next(batch.docs[n])) ++n;
      batch.docs.resize(n);
    } catch (...) {
      batch.docs.clear();
      batch.error = std::current_exception();
    }
    batch.bytes_read = reader_.bytes_read();
    const bool last = batch.error || batch.docs.size() < batch_size_;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
    if (stop_) return;
    ready_.push_back(std::move(batch));
    finished_ = last;
    lock.unlock();
    changed_.notify_all();
    if (last) return;
  }
}

std::vector<RawDocument> BatchPrefetcher::next(int64_t& bytes_read) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
  if (ready_.empty()) return {};  // after the last batch
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  changed_.notify_all();
  if (batch.error) std::rethrow_exception(batch.error);
  bytes_read = batch.bytes_read;
  return std::move(batch.docs);
}

}  // namespace troupe::dataprep
