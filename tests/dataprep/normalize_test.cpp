// dataprep/normalize.h: the four normal forms against Python's unicodedata (tests/dataprep/normalize_reference.py
// run in the test) on every code point Python assigns and on seeded strings of letters with combining marks; the
// whitespace cleanup on hand-written cases.
#include "dataprep/normalize.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

TEST(Normalize, FourFormsEqualPythonsUnicodedata) {
  testing::ScratchDir dir("troupe-normalize");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/normalize_reference.py").string(), out.string()},
      std::chrono::seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ref = nlohmann::json::parse(testing::read_file(out));
  const auto& texts = ref["texts"];
  ASSERT_GT(texts.size(), 140000u);
  size_t changed = 0;
  for (const auto& [name, form] : {std::pair{"NFC", NormalForm::kNfc}, std::pair{"NFD", NormalForm::kNfd},
                                   std::pair{"NFKC", NormalForm::kNfkc}, std::pair{"NFKD", NormalForm::kNfkd}}) {
    const auto& want = ref["forms"][name];
    size_t mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string text = texts[i].get<std::string>();
      const std::string got = normalize(text, form);
      const std::string expected = want[i].get<std::string>();
      changed += got != text;
      if (got != expected && ++mismatches <= 5) {
        ADD_FAILURE() << name << " of " << nlohmann::json(text) << ": " << nlohmann::json(got) << " vs Python's "
                      << nlohmann::json(expected) << " (Unicode " << ref["version"] << ")";
      }
    }
    EXPECT_EQ(mismatches, 0u) << name;
  }
  EXPECT_GT(changed, 10000u);  // decompositions, compatibility mappings and compositions all exercised
}

TEST(Normalize, NamesAndMalformedInputAreErrors) {
  EXPECT_EQ(parse_normal_form("NFKC"), NormalForm::kNfkc);
  EXPECT_THROW(parse_normal_form("nfc"), ConfigError);
  EXPECT_THROW(normalize("a\xff", NormalForm::kNfc, "doc 3"), DataError);
  EXPECT_EQ(normalize("\xef\xac\x81", NormalForm::kNfkc), "fi");    // the ligature ﬁ
  EXPECT_EQ(normalize("e\xcc\x81", NormalForm::kNfc), "\xc3\xa9");  // e + combining acute -> é
}

TEST(CleanWhitespace, HandWrittenCases) {
  EXPECT_EQ(clean_whitespace("  a \t b  \r\nc\rd\n\n\n\n e  "), "a b\nc\nd\n\ne");
  EXPECT_EQ(clean_whitespace("a\xc2\xa0\xe3\x80\x80"
                             "b"),
            "a b");  // NBSP + ideographic space
  EXPECT_EQ(clean_whitespace("zero\xe2\x80\x8bwidth\xc2\xad hy\x07phen"), "zerowidth hyphen");
  EXPECT_EQ(clean_whitespace("\xef\xbb\xbf"
                             "bom\x0b"
                             "vt\x1f"
                             "us"),
            "bom vt us");  // BOM removed, VT/US spaces
  EXPECT_EQ(clean_whitespace("\n\n  \n"), "");
  EXPECT_EQ(clean_whitespace("caf\xc3\xa9 \xe2\x80\x94 ok"), "caf\xc3\xa9 \xe2\x80\x94 ok");  // text untouched
}

}  // namespace
}  // namespace troupe::dataprep
