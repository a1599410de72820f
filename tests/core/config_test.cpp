// Config loading, binding, validation and emission: every error names file:line:col and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <utility>

#include "core/config_binder.h"
#include "core/config_tree.h"
#include "core/run_config.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using ::testing::HasSubstr;
using troupe::testing::ScratchDir;
using troupe::testing::write_file;

enum class Shade { kLight, kDark };
constexpr auto config_names(Shade) {
  return std::array{std::pair{Shade::kLight, "light"}, std::pair{Shade::kDark, "dark"}};
}

struct TestSection {
  Shade shade = Shade::kLight;
  std::string data;  // a path
  int64_t count = 5;
  double lr = 3e-4;
  bool flag = false;
  std::string label = "x";
  std::vector<int> dims = {1, 2};
  std::vector<std::string> tags;
  std::map<std::string, std::string> env;
  std::optional<double> maybe;

  template <class V>
  void visit(V& v) {
    v.field("shade", shade, "light | dark");
    v.path("data", data, "a data file");
    v.field("count", count, "a count");
    v.field("lr", lr, "a rate");
    v.field("flag", flag, "a switch");
    v.field("label", label, "a name");
    v.field("dims", dims, "sizes");
    v.field("tags", tags, "labels");
    v.field("env", env, "variables");
    v.field("maybe", maybe, "optional number");
  }
  void validate(ConfigValidator& v) const {
    v.require(count > 0, "count", count, "an integer > 0");
    v.require(lr > 0, "lr", lr, "a number > 0");
  }
};

struct TestConfig {
  int64_t seed = 0;
  RunSection run;
  RuntimeSection runtime;
  TestSection test;

  template <class V>
  void visit(V& v) {
    v.field("seed", seed, "seed");
    v.field("run", run, "run");
    v.field("runtime", runtime, "runtime");
    v.field("test", test, "test");
  }
  void validate(ConfigValidator& v) const {
    v.nested("run", run);
    v.nested("runtime", runtime);
    v.nested("test", test);
  }
};

// Loads text as <dir>/name and binds it; returns the ConfigError message ("" if none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

class ConfigTest : public ::testing::Test {
 protected:
  BoundConfig<TestConfig> load(const std::string& name, const std::vector<std::string>& overrides = {}) {
    return bind_config<TestConfig>(load_config(dir_ / name, overrides));
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  ScratchDir dir_;
};

TEST_F(ConfigTest, DefaultsWhenFileIsEmpty) {
  write_file(dir_ / "a.yaml", "");
  auto cfg = load("a.yaml");
  EXPECT_EQ(cfg.value.test.count, 5);
  EXPECT_EQ(cfg.value.runtime.threads, 0);
  EXPECT_EQ(cfg.origins.at("runtime.threads").kind, Origin::Kind::Default);
}

TEST_F(ConfigTest, ReadsEveryType) {
  write_file(dir_ / "a.yaml",
             "seed: 42\n"
             "test:\n"
             "  count: 7\n"
             "  lr: 1.5e-3\n"
             "  flag: yes\n"
             "  label: hello world\n"
             "  dims: [3, 4, 5]\n"
             "  tags:\n    - a\n    - b\n"
             "  env: {A: '1', B: two}\n"
             "  maybe: 0.25\n");
  auto c = load("a.yaml").value;
  EXPECT_EQ(c.seed, 42);
  EXPECT_EQ(c.test.count, 7);
  EXPECT_DOUBLE_EQ(c.test.lr, 1.5e-3);
  EXPECT_TRUE(c.test.flag);
  EXPECT_EQ(c.test.label, "hello world");
  EXPECT_EQ(c.test.dims, (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(c.test.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.test.env.at("B"), "two");
  ASSERT_TRUE(c.test.maybe.has_value());
  EXPECT_DOUBLE_EQ(*c.test.maybe, 0.25);
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineKeyAndSuggestion) {
  write_file(dir_ / "a.yaml", "seed: 1\nruntime:\n  thread: 4\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("a.yaml") + ":3:"));
  EXPECT_THAT(msg, HasSubstr("unknown key 'runtime.thread'"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'runtime.threads'?"));
}

TEST_F(ConfigTest, UnknownTopLevelKeySuggests) {
  write_file(dir_ / "a.yaml", "sed: 1\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("a.yaml") + ":1:"));
  EXPECT_THAT(msg, HasSubstr("unknown key 'sed'"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'seed'?"));
}

TEST_F(ConfigTest, UnknownKeyWithoutPlausibleSuggestionListsValidKeys) {
  write_file(dir_ / "a.yaml", "test:\n  zzzzzzzzzz: 1\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr("unknown key 'test.zzzzzzzzzz'"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("did you mean")));
  EXPECT_THAT(msg, HasSubstr("valid keys in 'test': shade, data, count, lr, flag"));
}

TEST_F(ConfigTest, WrongTypeNamesFileLineColumnAndKey) {
  write_file(dir_ / "a.yaml", "runtime:\n  threads: many\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("a.yaml") + ":2:12: runtime.threads: expected an integer"));
  EXPECT_THAT(msg, HasSubstr("got 'many'"));
}

TEST_F(ConfigTest, WrongTypesOfEveryKind) {
  write_file(dir_ / "a.yaml", "test:\n  flag: maybe\n");
  EXPECT_THAT(error_of([&] { load("a.yaml"); }), HasSubstr(":2:9: test.flag: expected a boolean"));
  write_file(dir_ / "b.yaml", "test:\n  lr: fast\n");
  EXPECT_THAT(error_of([&] { load("b.yaml"); }), HasSubstr(":2:7: test.lr: expected a number"));
  write_file(dir_ / "c.yaml", "test:\n  dims: 3\n");
  EXPECT_THAT(error_of([&] { load("c.yaml"); }), HasSubstr(":2:9: test.dims: expected a list, got '3'"));
  write_file(dir_ / "d.yaml", "test:\n  dims: [1, x]\n");
  EXPECT_THAT(error_of([&] { load("d.yaml"); }), HasSubstr(":2:13: test.dims[1]: expected an integer"));
  write_file(dir_ / "e.yaml", "runtime: 3\n");
  EXPECT_THAT(error_of([&] { load("e.yaml"); }), HasSubstr(":1:10: runtime: expected a mapping of keys"));
  write_file(dir_ / "f.yaml", "test:\n  count: 2.5\n");
  EXPECT_THAT(error_of([&] { load("f.yaml"); }), HasSubstr("test.count: expected an integer"));
  write_file(dir_ / "g.yaml", "test:\n  count: 99999999999999999999\n");
  EXPECT_THAT(error_of([&] { load("g.yaml"); }), HasSubstr("test.count: expected an integer in ["));
  write_file(dir_ / "h.yaml", "test:\n  label: [a]\n");
  EXPECT_THAT(error_of([&] { load("h.yaml"); }), HasSubstr("test.label: expected a string, got a list"));
}

TEST_F(ConfigTest, OutOfRangeNamesFileLineKeyAndExpectation) {
  write_file(dir_ / "a.yaml", "seed: 3\nruntime:\n  threads: -3\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("a.yaml") + ":3:12: runtime.threads = -3: expected an integer in [0, 1024]"));
  write_file(dir_ / "b.yaml", "run:\n  resume: sometimes\n");
  EXPECT_THAT(error_of([&] { load("b.yaml"); }),
              HasSubstr(":2:11: run.resume: expected auto, never or must, got 'sometimes'"));
}

TEST_F(ConfigTest, MalformedYamlNamesFileAndLine) {
  write_file(dir_ / "a.yaml", "seed: 1\ntest:\n  dims: [1, 2\n  lr: 3\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("a.yaml") + ":"));
  EXPECT_THAT(msg, HasSubstr("malformed YAML"));
  write_file(dir_ / "b.yaml", "seed: 1\nseed: 2\n");
  EXPECT_THAT(error_of([&] { load("b.yaml"); }), HasSubstr(file("b.yaml") + ":2:1: duplicate key 'seed'"));
  write_file(dir_ / "c.yaml", "- 1\n- 2\n");
  EXPECT_THAT(error_of([&] { load("c.yaml"); }), HasSubstr("a config file must be a mapping"));
}

// A "billion laughs" document: 9 levels of 10 aliases each would expand to 10^9 values. It is refused as a config
// error naming the file, not expanded until memory runs out.
TEST_F(ConfigTest, AliasBombIsAConfigErrorNotAnAllocationFailure) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    yaml += "]\n";
  }
  yaml += "seed: 1\n";
  write_file(dir_ / "bomb.yaml", yaml);
  const std::string msg = error_of([&] { load("bomb.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("bomb.yaml") + ":"));
  EXPECT_THAT(msg, HasSubstr("expands to more than 100000 values"));
  // Also through an override, and nesting too deep for any config.
  write_file(dir_ / "a.yaml", "seed: 1\n");
  EXPECT_THAT(error_of([&] { load("a.yaml", {"test.dims=" + std::string(100, '[') + std::string(100, ']')}); }),
              HasSubstr("nests deeper than 64 levels"));
  // Aliases within the budget still work: a shared block used twice.
  write_file(dir_ / "ok.yaml", "defaults: &d {lr: 0.5}\ntest: *d\n");
  EXPECT_THAT(error_of([&] { load("ok.yaml"); }), HasSubstr("defaults"));  // unknown key, not an expansion error
}

TEST_F(ConfigTest, MissingFileIsNamed) {
  auto msg = error_of([&] { load("nope.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("nope.yaml") + ": no such config file"));
}

TEST_F(ConfigTest, MissingBaseNamesTheIncludingLine) {
  write_file(dir_ / "a.yaml", "seed: 1\nbase: gone.yaml\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr("gone.yaml: no such config file"));
  EXPECT_THAT(msg, HasSubstr("named by base: at " + file("a.yaml") + ":2:7"));
}

TEST_F(ConfigTest, BaseChainMergesAndRecordsOrigins) {
  write_file(dir_ / "root.yaml", "seed: 1\nruntime:\n  threads: 2\n  log_level: warn\ntest:\n  dims: [9]\n");
  write_file(dir_ / "sub/mid.yaml", "base: ../root.yaml\nruntime:\n  threads: 4\n");
  write_file(dir_ / "sub/top.yaml", "base: mid.yaml\ntest:\n  count: 11\n");
  auto cfg = load("sub/top.yaml");
  EXPECT_EQ(cfg.value.seed, 1);
  EXPECT_EQ(cfg.value.runtime.threads, 4);
  EXPECT_EQ(cfg.value.runtime.log_level, LogLevel::kWarn);
  EXPECT_EQ(cfg.value.test.count, 11);
  EXPECT_EQ(cfg.value.test.dims, std::vector<int>{9});
  EXPECT_EQ(cfg.origins.at("runtime.threads").describe(), file("sub/mid.yaml") + ":3:12");
  EXPECT_EQ(cfg.origins.at("runtime.log_level").describe(), file("sub/../root.yaml") + ":4:14");
  EXPECT_EQ(cfg.origins.at("test.count").describe(), file("sub/top.yaml") + ":3:10");
}

TEST_F(ConfigTest, BaseListAppliesInOrder) {
  write_file(dir_ / "x.yaml", "seed: 1\ntest:\n  label: from-x\n");
  write_file(dir_ / "y.yaml", "seed: 2\n");
  write_file(dir_ / "top.yaml", "base: [x.yaml, y.yaml]\n");
  auto c = load("top.yaml").value;
  EXPECT_EQ(c.seed, 2);
  EXPECT_EQ(c.test.label, "from-x");
}

TEST_F(ConfigTest, BaseCycleIsDetected) {
  write_file(dir_ / "a.yaml", "base: b.yaml\n");
  write_file(dir_ / "b.yaml", "seed: 1\nbase: a.yaml\n");
  auto msg = error_of([&] { load("a.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("b.yaml") + ":2:7: base: file cycle"));
  EXPECT_THAT(msg, HasSubstr("a.yaml -> "));
  write_file(dir_ / "self.yaml", "base: self.yaml\n");
  EXPECT_THAT(error_of([&] { load("self.yaml"); }), HasSubstr("file cycle"));
}

TEST_F(ConfigTest, OverridesOfEveryType) {
  write_file(dir_ / "a.yaml", "test:\n  count: 1\n");
  auto cfg =
      load("a.yaml", {"test.count=12", "test.lr=1e-4", "test.flag=true", "test.label=two words", "test.dims=[7, 8]",
                      "test.tags=[p, q]", "test.env.X=1", "test.maybe=0.5", "seed=-5", "runtime.log_level=debug"});
  const auto& c = cfg.value;
  EXPECT_EQ(c.test.count, 12);
  EXPECT_DOUBLE_EQ(c.test.lr, 1e-4);
  EXPECT_TRUE(c.test.flag);
  EXPECT_EQ(c.test.label, "two words");
  EXPECT_EQ(c.test.dims, (std::vector<int>{7, 8}));
  EXPECT_EQ(c.test.tags, (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(c.test.env.at("X"), "1");
  EXPECT_DOUBLE_EQ(*c.test.maybe, 0.5);
  EXPECT_EQ(c.seed, -5);
  EXPECT_EQ(c.runtime.log_level, LogLevel::kDebug);
  EXPECT_EQ(cfg.origins.at("test.count").describe(), "override 'test.count=12'");
  EXPECT_EQ(cfg.origins.at("test.count").kind, Origin::Kind::Override);
}

TEST_F(ConfigTest, OverrideErrorsNameTheOverride) {
  write_file(dir_ / "a.yaml", "");
  EXPECT_THAT(error_of([&] { load("a.yaml", {"runtime.threds=2"}); }),
              HasSubstr("override 'runtime.threds=2': unknown key 'runtime.threds' (did you mean 'runtime.threads'?)"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"runtime.threads=abc"}); }),
              HasSubstr("override 'runtime.threads=abc': runtime.threads: expected an integer"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"runtime.threads=-1"}); }),
              HasSubstr("override 'runtime.threads=-1': runtime.threads = -1: expected"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"novalue"}); }), HasSubstr("expected key.path=value"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"a..b=1"}); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"test.dims=[1,"}); }), HasSubstr("malformed YAML"));
}

TEST_F(ConfigTest, EmitRoundTripsAndShowsOrigins) {
  write_file(dir_ / "a.yaml", "seed: 9\ntest:\n  label: 'true'\n  lr: 0.1\n  env: {K: v}\n  tags: ['01', 'a b']\n");
  auto cfg = load("a.yaml", {"test.count=3"});
  std::string yaml = emit_config(cfg.value, nullptr, {});
  write_file(dir_ / "resolved.yaml", yaml);
  auto again = load("resolved.yaml").value;
  EXPECT_EQ(again.seed, 9);
  EXPECT_EQ(again.test.label, "true");
  EXPECT_DOUBLE_EQ(again.test.lr, 0.1);
  EXPECT_EQ(again.test.count, 3);
  EXPECT_EQ(again.test.env, cfg.value.test.env);
  EXPECT_EQ(again.test.tags, cfg.value.test.tags);
  EXPECT_EQ(again.test.dims, cfg.value.test.dims);

  std::string shown = emit_config(cfg.value, &cfg.origins, {true, false});
  EXPECT_THAT(shown, HasSubstr("# " + file("a.yaml") + ":1:7"));
  EXPECT_THAT(shown, HasSubstr("count: 3"));
  EXPECT_THAT(shown, HasSubstr("# override 'test.count=3'"));
  EXPECT_THAT(shown, HasSubstr("threads: 0"));
  EXPECT_THAT(shown, HasSubstr("# default"));
}

TEST_F(ConfigTest, ChoicesBindAsEnumsAndUnknownNamesListTheChoices) {
  write_file(dir_ / "a.yaml", "test:\n  shade: dark\n");
  auto cfg = load("a.yaml");
  EXPECT_EQ(cfg.value.test.shade, Shade::kDark);
  EXPECT_THAT(emit_config(cfg.value, nullptr, {}), HasSubstr("shade: dark"));
  EXPECT_EQ(load("a.yaml", {"test.shade=light"}).value.test.shade, Shade::kLight);
  EXPECT_EQ(load("a.yaml", {"runtime.log_level=error"}).value.runtime.log_level, LogLevel::kError);

  write_file(dir_ / "b.yaml", "test:\n  shade: grey\n");
  const std::string msg = error_of([&] { load("b.yaml"); });
  EXPECT_THAT(msg, HasSubstr(file("b.yaml") + ":2:10"));
  EXPECT_THAT(msg, HasSubstr("test.shade: expected light or dark, got 'grey'"));
  EXPECT_THAT(error_of([&] { load("a.yaml", {"run.resume=sometimes"}); }),
              HasSubstr("run.resume: expected auto, never or must"));
}

TEST_F(ConfigTest, PathsResolveAgainstTheFileThatWritesThem) {
  // A relative path in a file is relative to that file (also through base:), not to the working directory; an
  // override on the command line is relative to the working directory, made absolute (worker processes read the
  // run's saved config elsewhere); absolute paths and ${...} placeholders are left alone.
  write_file(dir_ / "shared/base.yaml", "test:\n  data: corpus/train.bin\nrun:\n  dir: ../runs\n");
  write_file(dir_ / "exp/top.yaml", "base: ../shared/base.yaml\n");
  auto cfg = load("exp/top.yaml").value;
  EXPECT_EQ(cfg.test.data, file("shared/corpus/train.bin"));
  EXPECT_EQ(cfg.run.dir, file("runs"));
  EXPECT_EQ(load("exp/top.yaml", {"test.data=mine.bin"}).value.test.data,
            (std::filesystem::current_path() / "mine.bin").string());
  EXPECT_EQ(load("exp/top.yaml", {"test.data=/srv/x.bin"}).value.test.data, "/srv/x.bin");
  write_file(dir_ / "exp/abs.yaml", "test:\n  data: /srv/data.bin\n");
  EXPECT_EQ(load("exp/abs.yaml").value.test.data, "/srv/data.bin");
  write_file(dir_ / "exp/run.yaml", "test:\n  data: ${run}/data.bin\n");
  EXPECT_EQ(load("exp/run.yaml").value.test.data, "${run}/data.bin");
  EXPECT_EQ(load("exp/run.yaml").value.run.dir, "runs");  // the default stays relative to the working directory
  // The resolved config re-binds to the same values from anywhere (paths are now absolute).
  write_file(dir_ / "elsewhere/resolved.yaml", emit_config(cfg, nullptr, {}));
  EXPECT_EQ(load("elsewhere/resolved.yaml").value.test.data, file("shared/corpus/train.bin"));
}

TEST(ConfigTree, EditDistanceAndNearestKey) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(edit_distance("", "abc"), 3);
  EXPECT_EQ(nearest_key("lerning_rate", {"learning_rate", "warmup"}), "learning_rate");
  EXPECT_EQ(nearest_key("qqqq", {"learning_rate", "warmup"}), "");
}

}  // namespace
}  // namespace troupe::core
