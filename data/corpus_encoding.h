// Corpus files into training data: text files streamed into a token file (tokenizers/token_file.h) and JSONL
// documents given their token ids, on all threads and with the tokenizers' cut points (tokenizers/corpus.h), so
// that the ids equal a single-threaded encode of each document.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/token_file.h"

namespace troupe::data {

using tokenizers::BpeTokenizer;
using tokenizers::TokenFile;  // token files are tokenizers/token_file.h's (torch-free: data clean reads them too)
using tokenizers::TokenFileInfo;
using tokenizers::TokenFileWriter;

// ---- streaming files into a token file ----------------------------------------------------------------------

// The separator id for `choice`: "none" -> nullopt, "auto" -> <|endoftext|> when the tokenizer has it (else
// nullopt), otherwise the id of that special token; ConfigError listing the known specials when it has none such.
std::optional<int> document_separator(const BpeTokenizer& tok, const std::string& choice);

struct EncodeFilesOptions {
  int threads = 0;                 // 0 = hardware concurrency
  size_t block_bytes = 16u << 20;  // bytes read per step; a file is never held whole unless its pattern forbids cuts
  std::optional<int> separator;    // id appended after each file (document), e.g. <|endoftext|>
};

struct EncodeFilesReport {
  size_t files = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;  // including separators
  double seconds = 0;
  TokenFileInfo info;
};

// Each file is one document (special-token text inside it is ordinary text). Output is written through
// TokenFileWriter: nothing is left at `output` if this throws.
EncodeFilesReport encode_files_to_token_file(const BpeTokenizer& tok, const std::vector<std::filesystem::path>& files,
                                             const std::filesystem::path& output, const EncodeFilesOptions& options);

// ---- JSONL datasets ------------------------------------------------------------------------------------------

struct JsonlEncodeOptions {
  std::string text_field = "text";
  std::string ids_field = "ids";
  bool allow_special = false;  // special-token text -> its id (else encoded as ordinary text)
  int threads = 0;
  size_t batch_lines = 4096;
};

struct JsonlEncodeReport {
  uint64_t lines = 0;
  uint64_t tokens = 0;
  double seconds = 0;
};

// Reads one JSON object per line, adds `ids_field` with the ids of `text_field`, writes the objects in the same
// order (blank lines skipped). A malformed line, a non-object, or a missing/non-string text field throws
// DataError naming input:line; the output is written to a temp file and only renamed into place on success.
JsonlEncodeReport encode_jsonl(const BpeTokenizer& tok, const std::filesystem::path& input,
                               const std::filesystem::path& output, const JsonlEncodeOptions& options);

}  // namespace troupe::data
