// metrics/py_regex.h against Python's re itself (tests/metrics/py_regex_reference.py run in the test): findall with
// its group rules, sub(pattern, "") and search on the answer-extraction patterns of lm-evaluation-harness's tasks,
// empty matches, Unicode classes, anchors, flags and Python-only syntax.
#include "metrics/py_regex.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using nlohmann::json;

const std::vector<std::string> kTexts = {
    "",
    "The answer is 42.",
    "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72",
    "37+5=42 42+40=82 #### 82",
    "#### -1,234.5 and #### 7\n",
    "so the answer is $1,000. The answer is 18. The answer is -3",
    "no numbers here\n",
    "axbxxc",
    "line one\nline two\n",
    "tab\there\x1c and\u3000wide\u00a0nbsp",
    "caf\u00e9 na\u00efve \u0661\u0662\u0663 \u00b2 x_y",
    "STRASSE stra\u00dfe \u0130stanbul",
    "(A) or (B)? The best answer is (C).",
    "[invalid]",
    "ends with newline 12\n",
    "$45 and $ 7, 1,000,000",
};

const std::vector<std::string> kPatterns = {
    R"(#### (\-?[0-9\.\,]+))",                 // gsm8k strict-match
    R"((-?[$0-9.,]{2,})|(-?[0-9]+))",          // gsm8k flexible-extract (2 groups: tuples)
    R"(The answer is (\-?[0-9\.\,]*[0-9]+))",  // gsm8k-cot
    R"((?s).*#### )",                          // regexes_to_ignore
    R"(\.$)",
    R"(,)",
    R"(\$)",  // regexes_to_ignore
    R"(x*)",
    R"(\b)",
    R"((a)|(x))",
    R"(x|)",
    R"()",  // empty matches and unset groups
    R"(\d+)",
    R"(\s+)",
    R"(\S+)",
    R"(\w+)",
    R"([\s,]+)",
    R"([^\S\n]+)",  // Unicode classes
    R"(^line \w+$)",
    R"((?m)^line \w+$)",
    R"(\d+\Z)",
    R"(\d+$)",
    R"(\A\w+)",  // anchors
    R"((?i)strasse)",
    R"((?i)stra\u00dfe)",
    R"(\U0001F600|\u00e9)",  // flags, escapes
    R"((?P<num>\d)(?P=num))",
    R"((?<=\$)\d+)",
    R"(\d(?=\d))",
    R"(\(([A-Z])\))",  // named groups, look-around
    R"(x{,2})",
    R"(answer is \(?([A-D])\)?)",
    R"([\]a]+)",
    R"(.+)",
};

json reference(const json& cases) {
  testing::ScratchDir dir("troupe-py-regex");
  testing::write_file(dir / "in.json", cases.dump());
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/metrics/py_regex_reference.py").string(),
                            (dir / "in.json").string(), (dir / "out.json").string()},
                           std::chrono::seconds(60));
  if (r.exit_code != 0) throw std::runtime_error("py_regex_reference.py failed:\n" + r.output);
  return json::parse(testing::read_file(dir / "out.json"));
}

TEST(PyRegex, FindallSubAndSearchEqualPythonsRe) {
  json cases = json::array();
  for (const auto& p : kPatterns) cases.push_back({{"pattern", p}, {"texts", kTexts}});
  const json ref = reference(cases);
  ASSERT_EQ(ref.size(), kPatterns.size());
  size_t matches = 0;
  for (size_t c = 0; c < kPatterns.size(); ++c) {
    ASSERT_FALSE(ref[c].contains("error")) << kPatterns[c] << ": " << ref[c]["error"];
    const PyRegex rx(kPatterns[c]);
    EXPECT_EQ(rx.groups(), ref[c]["groups"].get<int>()) << kPatterns[c];
    for (size_t t = 0; t < kTexts.size(); ++t) {
      const json& want = ref[c]["rows"][t];
      const auto found = rx.findall(kTexts[t]);
      EXPECT_EQ(json(found), want["findall"]) << "pattern " << kPatterns[c] << " text " << json(kTexts[t]);
      EXPECT_EQ(rx.remove_all(kTexts[t]), want["sub"].get<std::string>())
          << "pattern " << kPatterns[c] << " text " << json(kTexts[t]);
      EXPECT_EQ(rx.search(kTexts[t]), want["search"].get<bool>()) << "pattern " << kPatterns[c];
      matches += found.size();
    }
  }
  EXPECT_GT(matches, 300u);
}

TEST(PyRegex, BadPatternsAreConfigErrorsNamingThePattern) {
  for (const std::string bad : {"(unclosed", "[a-", "x\\", "(?a)\\w", "\\N{DIGIT ONE}", "\\u12"}) {
    try {
      PyRegex rx(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace troupe::metrics
