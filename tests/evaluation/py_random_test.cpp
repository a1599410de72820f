// evaluation/py_random.h against CPython's random module itself (run in the test).
#include "evaluation/py_random.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::evaluation {
namespace {

TEST(PyRandom, EqualsCPythonRandomForWordsBitsAndSamples) {
  testing::ScratchDir dir("troupe-pyrandom");
  const std::string script = R"(
import json, random, sys
out = {"words": {}, "samples": []}
for seed in (0, 1, 42, 1234, 2**32 + 5, 2**40 + 12345):
    r = random.Random(seed)
    out["words"][str(seed)] = [r.getrandbits(32) for _ in range(1300)] + [r.getrandbits(7) for _ in range(50)]
r = random.Random(1234)
for n in (1, 2, 5, 21, 22, 30, 100, 1000, 5000):
    for k in sorted({0, 1, 2, 5, 6, 7, 20, n}):
        if k <= n:
            out["samples"].append([n, k, r.sample(range(n), k)])
json.dump(out, open(sys.argv[1], "w"))
)";
  testing::write_file(dir / "ref.py", script);
  const auto r = testing::run_process({TROUPE_PYTHON, (dir / "ref.py").string(), (dir / "ref.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(testing::read_file(dir / "ref.json"));
  for (const auto& [seed, words] : ref["words"].items()) {
    PyRandom rng(std::stoull(seed));
    for (size_t i = 0; i < 1300; ++i) ASSERT_EQ(rng.getrandbits(32), words[i].get<uint32_t>()) << seed << " " << i;
    for (size_t i = 1300; i < 1350; ++i) ASSERT_EQ(rng.getrandbits(7), words[i].get<uint32_t>()) << seed << " " << i;
  }
  PyRandom rng(1234);  // one generator through every call, as the harness uses it across documents
  for (const auto& s : ref["samples"]) {
    EXPECT_EQ(rng.sample(s[0].get<int64_t>(), s[1].get<int64_t>()), s[2].get<std::vector<int64_t>>())
        << "n=" << s[0] << " k=" << s[1];
  }
  EXPECT_THROW(rng.sample(3, 4), ConfigError);
}

}  // namespace
}  // namespace troupe::evaluation
