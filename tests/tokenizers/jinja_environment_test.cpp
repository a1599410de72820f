// tokenizers/jinja.h's Environment settings against jinja2 itself (run in the test): lm-evaluation-harness's prompt
// environment (no trim_blocks / lstrip_blocks, keep_trailing_newline, StrictUndefined) and the chat-template default.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/jinja.h"

namespace troupe::tokenizers::jinja {
namespace {

using nlohmann::json;

const std::vector<std::string> kTemplates = {
    "Question: {{question}}\nAnswer:",
    "{{ question }}\n",
    "{{ question }}\n\n",
    "{% for c in choices %}\n  - {{ c }}\n{% endfor %}\nEnd\n",
    "  {% if answer > 0 %}\nyes\n  {% else %}\nno\n  {% endif %}\n",
    "{# a comment #}\n{{ choices | join(', ') }}\r\nlast line\r\n",
    "{{ missing }}",
    "{% if missing %}x{% endif %}",
    "{% for m in missing %}{{ m }}{% endfor %}",
    "{{ missing | length }}",
    "{{ missing is defined }} {{ question is defined }}",
    "{{ missing | default('fallback') }}",
    "{{ choices[answer] }}{{ choices }}",
};

TEST(JinjaEnvironment, LmEvalAndChatEnvironmentsRenderAsJinja2) {
  testing::ScratchDir dir("troupe-jinja-env");
  const json doc = {{"question", "What sat?"}, {"choices", {"the cat", "a dog's"}}, {"answer", 1}};
  json cases = json::array();
  for (const auto& t : kTemplates) cases.push_back(t);
  testing::write_file(dir / "in.json", json{{"templates", cases}, {"doc", doc}}.dump());
  testing::write_file(dir / "ref.py", R"(
import json, sys
from jinja2 import BaseLoader, Environment, StrictUndefined
data = json.load(open(sys.argv[1]))
envs = {"lm_eval": Environment(loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True),
        "chat": Environment(trim_blocks=True, lstrip_blocks=True)}
out = {}
for name, env in envs.items():
    rows = []
    for t in data["templates"]:
        try:
            rows.append({"ok": True, "text": env.from_string(t).render(**data["doc"])})
        except Exception as e:
            rows.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
    out[name] = rows
json.dump(out, open(sys.argv[2], "w"))
)");
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (dir / "ref.py").string(), (dir / "in.json").string(), (dir / "out.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json ref = json::parse(testing::read_file(dir / "out.json"));
  const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(doc.dump());
  int errors = 0;
  for (const std::string env_name : {"lm_eval", "chat"}) {
    const Environment env = env_name == "lm_eval" ? Environment::lm_eval() : Environment{};
    for (size_t i = 0; i < kTemplates.size(); ++i) {
      const json& want = ref[env_name][i];
      const std::string what = env_name + " template " + std::to_string(i) + ": " + json(kTemplates[i]).dump();
      if (want["ok"].get<bool>()) {
        EXPECT_EQ(Template(kTemplates[i], "t", env).render(vars), want["text"].get<std::string>()) << what;
      } else {
        ++errors;
        EXPECT_THROW(Template(kTemplates[i], "t", env).render(vars), DataError) << what << " -> " << want["error"];
      }
    }
  }
  EXPECT_GE(errors, 4);  // StrictUndefined: printing, testing, iterating and measuring an undefined all raise
}

TEST(JinjaEnvironment, ErrorsUseTheEnvironmentsLabel) {
  try {
    Template("{{ x }}", "doc_to_text", Environment::lm_eval()).render(nlohmann::ordered_json::object());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("template 'doc_to_text': line 1: ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace troupe::tokenizers::jinja
