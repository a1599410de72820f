// ChatTemplate (tokenizers/chat_template.h) against transformers itself: every real template in
// tests/fixtures/chat_templates is rendered over seeded conversations by tests/tokenizers/chat_template_reference.py
// (transformers' render_jinja_template, as apply_chat_template(tokenize=False) calls it) and by Troupe, and the
// strings must be byte-identical, or both must fail (with the same message where the template raised). Plus the
// tokenizer_config.json reading and the input checks, by hand.
#include "tokenizers/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/support/test_support.h"

namespace troupe::tokenizers {
namespace {

using testing::ScratchDir;
using ojson = nlohmann::ordered_json;

std::filesystem::path fixtures() { return testing::source_dir() / "tests" / "fixtures" / "chat_templates"; }

ojson reference_cases(const ScratchDir& dir, int seed) {
  std::string script = (testing::source_dir() / "tests" / "tokenizers" / "chat_template_reference.py").string();
  auto result = testing::run_process(
      {TROUPE_PYTHON, script, "chat", fixtures().string(), (dir / "cases.json").string(), std::to_string(seed)});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return ojson::parse(testing::read_file(dir / "cases.json"));
}

// A JSON-quoted excerpt (a cut UTF-8 sequence shows as U+FFFD).
std::string quoted(const std::string& s) { return ojson(s).dump(-1, ' ', false, ojson::error_handler_t::replace); }

// Where two renders first differ, with some context: the message of a failing comparison.
std::string first_difference(const std::string& ours, const std::string& theirs) {
  size_t i = 0;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) ++i;
  size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + ": Troupe " + quoted(ours.substr(from, 120)) +
         " vs transformers " + quoted(theirs.substr(from, 120));
}

void check_against_transformers(int seed) {
  ScratchDir dir("chat-templates");
  ojson cases = reference_cases(dir, seed);
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  std::map<std::string, int> rendered, failed;
  for (const ojson& c : cases) {
    const std::string fixture = c["fixture"].get<std::string>();
    auto& tmpl = templates[fixture];
    if (!tmpl) {
      tmpl = std::make_unique<ChatTemplate>(ChatTemplate::from_tokenizer_config(fixtures() / (fixture + ".json")));
    }
    std::string ours;
    std::string our_error;
    try {
      ours = tmpl->render(c["messages"], c["add_generation_prompt"].get<bool>(), c["extra"]);
    } catch (const DataError& e) {
      our_error = e.what();
    }
    std::string input = fixture + " on " + c["messages"].dump() + " extra " + c["extra"].dump() +
                        " add_generation_prompt=" + c["add_generation_prompt"].dump();
    if (c.contains("output")) {
      ++rendered[fixture];
      const std::string theirs = c["output"].get<std::string>();
      EXPECT_EQ(our_error, "") << input;
      EXPECT_TRUE(ours == theirs) << input << "\n" << first_difference(ours, theirs);
    } else {
      ++failed[fixture];
      EXPECT_NE(our_error, "") << input << "\ntransformers failed: " << c["error"].get<std::string>()
                               << "\nTroupe rendered " << quoted(ours);
      if (c.contains("raised")) {
        EXPECT_NE(our_error.find("chat template raised: " + c["raised"].get<std::string>()), std::string::npos)
            << input << "\n"
            << our_error;
      }
    }
  }
  EXPECT_GE(templates.size(), 12u);
  EXPECT_GE(cases.size(), 1000u);
  for (const auto& [fixture, n] : rendered) EXPECT_GE(n, 40) << fixture << " rendered too few conversations";
  for (const auto& [fixture, n] : failed) EXPECT_GE(n, 1) << fixture;
}

TEST(ChatTemplate, RealTemplatesRenderAsTransformersSeed1) { check_against_transformers(1); }
TEST(ChatTemplate, RealTemplatesRenderAsTransformersSeed2) { check_against_transformers(2); }

ojson chat(std::initializer_list<std::pair<const char*, const char*>> turns) {
  ojson messages = ojson::array();
  for (const auto& [role, content] : turns) messages.push_back({{"role", role}, {"content", content}});
  return messages;
}

TEST(ChatTemplate, ReadsTokenizerConfigWithAddedTokensAndNamedTemplates) {
  ScratchDir dir("chat-config");
  testing::write_file(dir / "tokenizer_config.json", R"({
    "bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false},
    "eos_token": null,
    "chat_template": [
      {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token is defined }}"},
      {"name": "tool_use", "template": "{{ tools|length }} tools"}]})");
  auto tmpl = ChatTemplate::from_tokenizer_config(dir / "tokenizer_config.json");
  EXPECT_EQ(tmpl.name(), "tokenizer_config.json[default]");
  EXPECT_EQ(tmpl.render(chat({{"user", "a"}, {"assistant", "b"}}), false), "<B>[a][b]False");
  auto tools = ChatTemplate::from_tokenizer_config(dir / "tokenizer_config.json", "tool_use");
  EXPECT_EQ(tools.render(chat({{"user", "a"}}), false, ojson{{"tools", ojson::array({{{"type", "function"}}})}}),
            "1 tools");
  try {
    ChatTemplate::from_tokenizer_config(dir / "tokenizer_config.json", "rag");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template named 'rag' (available: default, tool_use)"),
              std::string::npos);
  }
  testing::write_file(dir / "none.json", R"({"bos_token": "<s>"})");
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(dir / "none.json"), DataError);
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(dir / "missing.json"), IoError);
}

TEST(ChatTemplate, PreparesMessagesAsApplyChatTemplate) {
  ChatTemplate tmpl(
      "{% for m in messages %}{{ m|tojson }}{% endfor %}|{{ add_generation_prompt }}|{{ tools }}"
      "|{{ documents }}|{{ extra }}",
      "t", "<s>", "</s>");
  ojson messages = ojson::parse(R"([{"role": "user", "content": "x", "tool_calls": null},
                                    {"role": "assistant", "content": "y", "reasoning": "r"}])");
  EXPECT_EQ(tmpl.render(messages, true, ojson{{"extra", 1}}),
            R"({"role": "user", "content": "x"})"
            R"({"thinking": "r", "role": "assistant", "content": "y", "reasoning": "r", "reasoning_content": "r"})"
            "|True|None|None|1");
  // A message's own thinking survives the aliasing; reasoning_content takes the first reasoning field set.
  EXPECT_EQ(tmpl.render(ojson::parse(R"([{"role": "assistant", "content": "y", "thinking": "own",
                                         "reasoning_content": "rc"}])"),
                        false),
            R"({"thinking": "own", "role": "assistant", "content": "y", "reasoning_content": "rc"}|False|None|None|)");
  EXPECT_THROW(tmpl.render(ojson::array(), true), DataError);
  EXPECT_THROW(tmpl.render(ojson::parse(R"(["not a message"])"), true), DataError);
  EXPECT_THROW(tmpl.render(chat({{"user", "x"}}), true, ojson{{"messages", 1}}), DataError);
  // nlohmann::json input works too (its objects come sorted by key).
  nlohmann::json sorted = nlohmann::json::array({{{"role", "user"}, {"content", "x"}}});
  EXPECT_EQ(tmpl.render(sorted, false), R"({"content": "x", "role": "user"}|False|None|None|)");
}

TEST(ChatTemplate, ErrorsNameTheTemplate) {
  try {
    ChatTemplate("{% for m in messages %}\n{% endif %}", "foo.json", "<s>", "</s>");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "chat template 'foo.json': line 2: unexpected 'endif' (expected 'endfor')");
  }
  ChatTemplate strict("{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok",
                      "strict", std::nullopt, std::nullopt);
  EXPECT_EQ(strict.render(chat({{"user", "a"}}), false), "ok");
  try {
    strict.render(chat({{"assistant", "a"}}), false);
    FAIL() << "no error";
  } catch (const jinja::RaisedError& e) {
    EXPECT_EQ(e.raised(), "first must be user");
    EXPECT_STREQ(e.what(), "chat template raised: first must be user (template 'strict', line 1)");
  }
}

}  // namespace
}  // namespace troupe::tokenizers
