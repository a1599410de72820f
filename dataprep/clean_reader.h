// The document sources of `troupe data clean` (dataprep/clean_pipeline.h): JSONL lines, plain-text files cut at
// blank lines or at lines, and token files (tokenizers/token_file.h) cut at their separator id; streamed as raw
// documents, optionally by a reader thread that stays a bounded number of batches ahead. Parsing a JSONL line and
// decoding ids are separate (parse_document), so that the pipeline's workers do them, not the reader thread. Not the
// stages and not the output.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dataprep/clean_pipeline.h"

namespace troupe::tokenizers {
class BpeTokenizer;
class TokenFile;
}  // namespace troupe::tokenizers

namespace troupe::dataprep {

// A document as read, before parsing.
struct RawDocument {
  std::string where;                                  // "file:line"; tokens: "file:document N" (N from 1)
  CleanInputFormat format = CleanInputFormat::kText;  // kJsonl, kText or kTokens
  std::string content;                                // JSONL: the line; text: the document; tokens: empty
  std::vector<int> ids;                               // tokens: the document's ids, without the separator
};

// A document being cleaned: its JSONL record (null for text and token sources; the text field is replaced on output)
// and the text.
struct ParsedDocument {
  std::string where;
  nlohmann::ordered_json record;  // ordered: the other fields of a line come out in their input order
  std::string text;
};

// How the inputs are read (CleanConfig's input keys, with the tokenizer loaded).
struct SourceOptions {
  CleanInputFormat format = CleanInputFormat::kAuto;
  std::string text_field = "text";
  TextSplit split = TextSplit::kBlankLines;
  const tokenizers::BpeTokenizer* tokenizer = nullptr;  // token files: decodes them (required for them)
  std::optional<int> separator;                         // token files: cuts documents; none: the sidecar's
};

// The format of `file` under `format`: auto reads ".jsonl"/".json" as JSONL, ".bin" as a token file, others as text.
CleanInputFormat input_format(const std::string& file, CleanInputFormat format);

// Streams the raw documents of a list of files, one at a time, on the calling thread.
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> files, SourceOptions options);
  ~DocumentReader();
  DocumentReader(DocumentReader&&) noexcept;
  // The next document, or false after the last. IoError for a file that cannot be opened; DataError for a token file
  // whose sidecar or size is wrong.
  bool next(RawDocument& doc);
  int64_t bytes_read() const { return bytes_; }

 private:
  void open(const std::string& file);
  void close();
  bool getline(std::string& line);
  std::string here() const;
  bool next_jsonl(RawDocument& doc);
  bool next_text(RawDocument& doc);
  bool next_tokens(RawDocument& doc);

  std::vector<std::string> files_;
  SourceOptions options_;
  size_t file_index_ = 0;
  bool open_ = false;
  CleanInputFormat current_ = CleanInputFormat::kText;
  std::unique_ptr<std::ifstream> in_;
  int64_t line_ = 0;
  int64_t bytes_ = 0;
  std::unique_ptr<tokenizers::TokenFile> tokens_;  // the open token file
  uint64_t token_pos_ = 0;                         // next id to read
  std::optional<int64_t> token_separator_;         // the open token file's separator
};

// The text (and, for JSONL, the record) of a raw document. DataError naming doc.where for a line that is not a JSON
// object with a string `text_field`; token ids are decoded with U+FFFD for invalid UTF-8 (Python's
// errors="replace"), DataError for an id the tokenizer does not have.
ParsedDocument parse_document(RawDocument&& doc, const SourceOptions& options);

// A DocumentReader on a thread of its own, filling batches of up to `batch_size` documents at most `depth` batches
// ahead of the consumer, so reading overlaps the processing of the batch before. Batches come out in input order;
// a reader error is rethrown by the next() that would have returned the batch it broke. The destructor stops and joins
// the thread (a consumer that throws leaves no thread behind).
class BatchPrefetcher {
 public:
  BatchPrefetcher(DocumentReader reader, size_t batch_size, size_t depth = 2);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;
  // The next batch, empty after the last; `bytes_read` gets the input bytes read up to its end.
  std::vector<RawDocument> next(int64_t& bytes_read);

 private:
  struct Batch {
    std::vector<RawDocument> docs;
    int64_t bytes_read = 0;
    std::exception_ptr error;
  };
  void produce();

  DocumentReader reader_;
  size_t batch_size_;
  size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  bool stop_ = false;      // set by the destructor
  bool finished_ = false;  // the producer has queued its last batch (empty or failed)
  std::thread thread_;
};

}  // namespace troupe::dataprep
