// dataprep/markup.h: fix_mojibake against ftfy.fix_encoding (tests/dataprep/markup_reference.py run in the test)
// on seeded mojibake and clean texts, in both directions; hand-computed cases for the HTML stripper and URLs.
#include "dataprep/markup.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

// ftfy's explanation uses only the Latin-1 / Windows-1252 -> UTF-8 repair that fix_mojibake makes.
bool in_repaired_class(const nlohmann::json& steps) {
  for (const auto& s : steps) {
    const std::string what = s[0].get<std::string>(), how = s[1].get<std::string>();
    const bool ok = (what == "encode" && (how == "latin-1" || how == "sloppy-windows-1252")) ||
                    (what == "decode" && (how == "utf-8" || how == "utf-8-variants"));
    if (!ok) return false;
  }
  return true;
}

TEST(Mojibake, EqualsFtfyFixEncodingOnItsLatin1AndCp1252Repairs) {
  testing::ScratchDir dir("troupe-mojibake");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/markup_reference.py").string(), out.string()},
      std::chrono::seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ref = nlohmann::json::parse(testing::read_file(out));
  const auto& texts = ref["texts"];
  size_t fixed = 0, untouched = 0, outside = 0, mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const std::string want = ref["fixed"][i].get<std::string>();
    if (!in_repaired_class(ref["steps"][i])) {
      ++outside;
      continue;
    }
    const std::string got = fix_mojibake(text);
    (want == text ? untouched : fixed) += 1;
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << nlohmann::json(text) << ": " << nlohmann::json(got) << " vs ftfy's " << nlohmann::json(want);
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(fixed, 1500u);                // repaired where ftfy repairs
  EXPECT_GT(untouched, 2500u);            // left alone where ftfy leaves the text (clean text and undetected mojibake)
  EXPECT_LT(outside, texts.size() / 20);  // the other ftfy repairs are rare on this corpus
}

TEST(Mojibake, HandCases) {
  EXPECT_EQ(fix_mojibake("Caf\xc3\x83\xc2\xa9"), "Caf\xc3\xa9");                      // CafÃ© -> Café
  EXPECT_EQ(fix_mojibake("it\xc3\xa2\xe2\x82\xac\xe2\x84\xa2s"), "it\xe2\x80\x99s");  // itâ€™s -> it’s
  EXPECT_EQ(fix_mojibake("Caf\xc3\xa9 na\xc3\xafve"), "Caf\xc3\xa9 na\xc3\xafve");    // clean: unchanged
  EXPECT_EQ(fix_mojibake("plain"), "plain");
  EXPECT_THROW(fix_mojibake("\xff"), DataError);
}

TEST(HtmlToText, HandCases) {
  EXPECT_EQ(html_to_text("<p>Caf&eacute;<br>open</p><p>daily &amp; late</p>"), "Caf\xc3\xa9\nopen\n\ndaily & late");
  EXPECT_EQ(html_to_text("<html><head><title>T</title><style>p{color:red}</style></head>"
                         "<body><script>var a = '<p>';</script><div>one</div><div>two <b>bold</b></div></body></html>"),
            "one\ntwo bold");
  EXPECT_EQ(html_to_text("a<!-- hidden <p> -->b <!DOCTYPE html>c"), "ab c");
  EXPECT_EQ(html_to_text("<ul><li>x</li><li>y</li></ul>"), "x\ny");
  EXPECT_EQ(html_to_text("<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>"), "1 2\n3");
  EXPECT_EQ(html_to_text("line\n  wrapped\tin source"), "line wrapped in source");
  EXPECT_EQ(html_to_text("a<br><br>b<br/>c"), "a\n\nb\nc");
  EXPECT_EQ(html_to_text("&#233;&#xE9;&#x20AC;&#128;&#0;&lt;&gt;&quot;&nbsp;x"),
            "\xc3\xa9\xc3\xa9\xe2\x82\xac\xe2\x82\xac\xef\xbf\xbd<>\" x");
  EXPECT_EQ(html_to_text("&bogus; &amp &hellip; &rarr;"), "&bogus; &amp \xe2\x80\xa6 \xe2\x86\x92");
  EXPECT_EQ(html_to_text("1 < 2 and <a href=\"x>y\">link</a> > 0"), "1 < 2 and link > 0");
  EXPECT_EQ(html_to_text("<SCRIPT type=x>alert(1)</Script>after<noscript>n</noscript>"), "after");
  EXPECT_EQ(html_to_text("<h1>Title</h1>\n<p>Body</p>"), "Title\n\nBody");
}

TEST(Urls, RemovedOrReplaced) {
  EXPECT_EQ(replace_urls("see https://a.org/x?y=1.", "<URL>"), "see <URL>.");
  EXPECT_EQ(replace_urls("(http://b.com/p) and www.c.net, ftp://d.org/f"), "() and , ");
  EXPECT_EQ(replace_urls("mail a@www.x.com, file.www.y and http:/bad"), "mail a@www.x.com, file.www.y and http:/bad");
  EXPECT_EQ(replace_urls("<a href=\"https://e.org\">", "U"), "<a href=\"U\">");
}

}  // namespace
}  // namespace troupe::dataprep
