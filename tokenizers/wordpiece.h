// BERT-style WordPiece tokenizer: HF BasicTokenizer cleaning/splitting, then greedy longest-match-first
// subwords with a "##" continuation prefix. Not a trainer, and no [CLS]/[SEP] or special-token handling.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::tokenizers {

struct WordPieceOptions {
  bool lower_case = true;                  // lower-case before splitting (BERT "uncased")
  std::optional<bool> strip_accents;       // drop accents (NFD + remove Mn); unset follows lower_case, as in HF
  bool tokenize_chinese_chars = true;      // put spaces around CJK ideographs so each becomes its own word
  std::string unk_token = "[UNK]";         // emitted for a word with no full segmentation; must be in the vocab
  std::string continuation_prefix = "##";  // marks a piece that continues the previous one inside a word
  int max_input_chars_per_word = 100;      // longer words (in code points) become unk_token whole
};

// Unicode coverage (no ICU): character categories (control, Zs, P*, Mn) come from PCRE2's Unicode tables, so they
// are complete. Lower-casing covers ASCII, Latin-1 Supplement, Latin Extended-A, basic Greek and Cyrillic; accent
// stripping decomposes precomposed Latin-1 Supplement and Latin Extended-A letters and drops every Mn mark (so
// text that is already NFD is handled everywhere). Other scripts' upper case or precomposed accents pass through
// unchanged, unlike HF (Python str.lower + unicodedata NFD). Invalid UTF-8 bytes read as U+FFFD and are dropped.
//
// Example with vocab {"[UNK]", "un", "##aff", "##able"}: tokenize("Unaffable") == {"un", "##aff", "##able"}.
class WordPieceTokenizer {
 public:
  // Token id = index in `vocab`. Throws DataError on empty or duplicate tokens or when unk_token is missing,
  // ConfigError when max_input_chars_per_word < 1 or continuation_prefix is empty.
  explicit WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options = {});

  // Reads a BERT vocab.txt: one token per line, id = line number - 1. Throws IoError when unreadable,
  // DataError naming file:line for an empty or duplicate token, DataError when unk_token is absent.
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab_txt, WordPieceOptions options = {});

  // HF BasicTokenizer: drop control chars, whitespace -> space, space out CJK ideographs, lower-case and strip
  // accents per options, split on whitespace and punctuation. "Hello, world!" -> {"hello", ",", "world", "!"}.
  std::vector<std::string> basic_tokenize(std::string_view text) const;

  // basic_tokenize, then greedy longest-match-first WordPiece per word.
  std::vector<int> encode(std::string_view text) const;
  std::vector<std::string> tokenize(std::string_view text) const;

  // Joins tokens with spaces, gluing continuation pieces (prefix removed) to the previous token, like HF's
  // convert_tokens_to_string. Throws DataError on an id outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;

  int token_to_id(std::string_view token) const;  // -1 when absent
  const std::string& id_to_token(int id) const;   // throws DataError when out of range
  int vocab_size() const { return static_cast<int>(vocab_.size()); }

 private:
  // Appends the WordPiece ids of one basic-tokenized word to `out`.
  void encode_word(std::string_view word, std::vector<int>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int> ids_;
  WordPieceOptions options_;
  bool strip_accents_;
  int unk_id_;
};

}  // namespace troupe::tokenizers
