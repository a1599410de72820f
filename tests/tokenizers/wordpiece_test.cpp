// WordPiece tokenizer tests: hand-computed BasicTokenizer splits, greedy subword matching, decode and vocab files.
// Not a parity test against HF fixtures; every expectation here is worked out by hand.
#include "tokenizers/wordpiece.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::tokenizers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> tiny_vocab() {
  return {"[PAD]", "[UNK]", "un", "##aff", "##able", "hello", ",", "world", "!", "a", "##b", "##c", "##bc"};
}

// A vocab file in its own scratch directory, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) : path_(dir_ / "vocab.txt") {
    troupe::testing::write_file(path_, contents);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  troupe::testing::ScratchDir dir_;  // declared first: path_ is built from it
  std::filesystem::path path_;
};

TEST(WordPieceTest, SplitsWordIntoLongestMatchingPieces) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_THAT(tok.tokenize("unaffable"), ElementsAre("un", "##aff", "##able"));
  EXPECT_THAT(tok.encode("unaffable"), ElementsAre(2, 3, 4));
}

TEST(WordPieceTest, PrefersLongestContinuation) {
  // "abc": "a", then "##bc" (longest) rather than "##b" + "##c".
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_THAT(tok.tokenize("abc"), ElementsAre("a", "##bc"));
}

TEST(WordPieceTest, UnknownWordBecomesSingleUnk) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_THAT(tok.tokenize("xyz"), ElementsAre("[UNK]"));
  // "unaffx": "un", "##aff" match but "x" does not, so the whole word is [UNK], not a partial split.
  EXPECT_THAT(tok.tokenize("unaffx hello"), ElementsAre("[UNK]", "hello"));
}

TEST(WordPieceTest, SplitsOnPunctuationAndLowerCases) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_THAT(tok.basic_tokenize("Hello, world!"), ElementsAre("hello", ",", "world", "!"));
  EXPECT_THAT(tok.tokenize("Hello, world!"), ElementsAre("hello", ",", "world", "!"));
  // BERT counts every printable non-alphanumeric ASCII char as punctuation, and Unicode P* too.
  EXPECT_THAT(tok.basic_tokenize("a$b^c \xC2\xBFqu\xC3\xA9?"),
              ElementsAre("a", "$", "b", "^", "c", "\xC2\xBF", "que", "?"));
}

TEST(WordPieceTest, SplitsChineseCharactersIndividually) {
  const WordPieceTokenizer tok(tiny_vocab());
  // 我爱你 = U+6211 U+7231 U+4F60.
  EXPECT_THAT(tok.basic_tokenize("\xE6\x88\x91\xE7\x88\xB1\xE4\xBD\xA0"),
              ElementsAre("\xE6\x88\x91", "\xE7\x88\xB1", "\xE4\xBD\xA0"));
  EXPECT_THAT(tok.basic_tokenize("ab\xE6\x88\x91"
                                 "cd"),
              ElementsAre("ab", "\xE6\x88\x91", "cd"));
  WordPieceOptions keep;
  keep.tokenize_chinese_chars = false;
  EXPECT_THAT(WordPieceTokenizer(tiny_vocab(), keep).basic_tokenize("\xE6\x88\x91\xE7\x88\xB1"),
              ElementsAre("\xE6\x88\x91\xE7\x88\xB1"));
}

TEST(WordPieceTest, StripsAccentsWhenLowerCasing) {
  const WordPieceTokenizer tok(tiny_vocab());
  // "Héllo" (precomposed é) and "He\u0301llo" (already NFD) both become "hello".
  EXPECT_THAT(tok.basic_tokenize("H\xC3\xA9llo"), ElementsAre("hello"));
  EXPECT_THAT(tok.basic_tokenize("He\xCC\x81llo"), ElementsAre("hello"));
  EXPECT_THAT(tok.tokenize("H\xC3\xA9llo"), ElementsAre("hello"));
  // Latin Extended-A: "Łódź" -> "łodz" (Ł has no decomposition, as in unicodedata).
  EXPECT_THAT(tok.basic_tokenize("\xC5\x81\xC3\xB3"
                                 "d\xC5\xBA"),
              ElementsAre("\xC5\x82odz"));
}

TEST(WordPieceTest, LowerCaseFalseKeepsCaseAndAccents) {
  WordPieceOptions cased;
  cased.lower_case = false;  // strip_accents unset -> follows lower_case -> false
  const WordPieceTokenizer tok(tiny_vocab(), cased);
  EXPECT_THAT(tok.basic_tokenize("H\xC3\xA9llo World"), ElementsAre("H\xC3\xA9llo", "World"));
  EXPECT_THAT(tok.tokenize("Hello hello"), ElementsAre("[UNK]", "hello"));
  cased.strip_accents = true;
  EXPECT_THAT(WordPieceTokenizer(tiny_vocab(), cased).basic_tokenize("H\xC3\xA9llo"), ElementsAre("Hello"));
}

TEST(WordPieceTest, LowerCaseWithoutAccentStripping) {
  WordPieceOptions options;
  options.strip_accents = false;
  const WordPieceTokenizer tok(tiny_vocab(), options);
  EXPECT_THAT(tok.basic_tokenize("H\xC3\x89LLO \xD0\x9C\xD0\x98\xD0\xA0"),  // "HÉLLO МИР"
              ElementsAre("h\xC3\xA9llo", "\xD0\xBC\xD0\xB8\xD1\x80"));
}

TEST(WordPieceTest, OverlongWordBecomesUnk) {
  WordPieceOptions options;
  options.max_input_chars_per_word = 8;
  const WordPieceTokenizer tok(tiny_vocab(), options);
  EXPECT_THAT(tok.tokenize("unaffable"), ElementsAre("[UNK]"));  // 9 chars > 8
  EXPECT_THAT(tok.tokenize("hello"), ElementsAre("hello"));
}

TEST(WordPieceTest, RemovesControlCharsAndNormalisesWhitespace) {
  const WordPieceTokenizer tok(tiny_vocab());
  // \x01 (Cc) and the soft hyphen U+00AD (Cf) are dropped; tab, newline and NBSP (Zs) separate words.
  EXPECT_THAT(tok.basic_tokenize("hel\x01lo\tworld\nun\xC2\xA0"
                                 "a\xC2\xAD"
                                 "b"),
              ElementsAre("hello", "world", "un", "ab"));
  EXPECT_TRUE(tok.basic_tokenize(" \t\r\n ").empty());
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(WordPieceTest, InvalidUtf8BytesAreDropped) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_THAT(tok.basic_tokenize("hel\xFFlo wor\xC3"), ElementsAre("hello", "wor"));
}

TEST(WordPieceTest, DecodeGluesContinuationPieces) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_EQ(tok.decode({2, 3, 4, 5, 6, 7, 8}), "unaffable hello , world !");
  EXPECT_EQ(tok.decode(tok.encode("unaffable")), "unaffable");
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_THROW(tok.decode({1, 99}), DataError);
  EXPECT_THROW(tok.decode({-1}), DataError);
}

TEST(WordPieceTest, TokenLookup) {
  const WordPieceTokenizer tok(tiny_vocab());
  EXPECT_EQ(tok.vocab_size(), 13);
  EXPECT_EQ(tok.token_to_id("##able"), 4);
  EXPECT_EQ(tok.token_to_id("nope"), -1);
  EXPECT_EQ(tok.id_to_token(5), "hello");
}

TEST(WordPieceTest, ConstructorRejectsBadVocabAndOptions) {
  EXPECT_THROW(WordPieceTokenizer({"a", "b"}), DataError);           // no [UNK]
  EXPECT_THROW(WordPieceTokenizer({"[UNK]", "a", "a"}), DataError);  // duplicate
  EXPECT_THROW(WordPieceTokenizer({"[UNK]", ""}), DataError);        // empty
  WordPieceOptions bad;
  bad.max_input_chars_per_word = 0;
  EXPECT_THROW(WordPieceTokenizer(tiny_vocab(), bad), ConfigError);
}

TEST(WordPieceTest, LoadsVocabFile) {
  const TempFile file("[PAD]\r\n[UNK]\nun\n##aff\n##able\n");
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(file.path());
  EXPECT_EQ(tok.vocab_size(), 5);
  EXPECT_EQ(tok.token_to_id("[PAD]"), 0);
  EXPECT_THAT(tok.encode("unaffable"), ElementsAre(2, 3, 4));
}

TEST(WordPieceTest, VocabFileDuplicateNamesFileAndLine) {
  const TempFile file("[UNK]\nfoo\nbar\nfoo\n");
  try {
    WordPieceTokenizer::from_vocab_file(file.path());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(file.path().string() + ":4:"));
    EXPECT_THAT(e.what(), HasSubstr("duplicate token 'foo'"));
  }
}

TEST(WordPieceTest, VocabFileEmptyLineNamesFileAndLine) {
  const TempFile file("[UNK]\n\nfoo\n");
  try {
    WordPieceTokenizer::from_vocab_file(file.path());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(file.path().string() + ":2:"));
  }
}

TEST(WordPieceTest, VocabFileWithoutUnkIsDataError) {
  const TempFile file("foo\nbar\n");
  try {
    WordPieceTokenizer::from_vocab_file(file.path());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("[UNK]"));
  }
}

TEST(WordPieceTest, MissingVocabFileIsIoError) {
  EXPECT_THROW(WordPieceTokenizer::from_vocab_file("/nonexistent/vocab.txt"), IoError);
}

}  // namespace
}  // namespace troupe::tokenizers
