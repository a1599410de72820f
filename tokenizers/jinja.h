// A Jinja subset that renders Hugging Face chat templates byte-for-byte as transformers does: jinja2 in the
// environment of transformers' chat_template_utils (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, {% generation %}, its tojson, raise_exception, strftime_now, dict and namespace globals).
//
//   jinja::Template t("{% for m in messages %}{{ m.role | upper }}: {{ m.content }}\n{% endfor %}", "demo");
//   t.render(nlohmann::ordered_json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}});  // "USER: hi\n"
//
// Supported: text, {{ }}, {% %}, {# #}, whitespace control; if/elif/else, for (else, `if` filter, the loop object),
// set (names, tuples, namespace attributes, blocks), macro/call, filter blocks, with, break/continue, generation;
// Python values and operators; jinja2's tests and the filters chat templates use; str/dict/list methods. Anything
// else is an error naming itself (at parse time where jinja2 fails at compile time, else when it runs): never a
// silent wrong render. Not a general jinja2: no extends/include/import, no recursive loops; 64-bit ints, no complex
// numbers; printf-style % only for s/r/d/i/u; str methods on |safe (Markup) values and a few rare filters
// (groupby, striptags, wordwrap, ...) fail clearly; printing a function or generator (Python prints its address) too.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizers/jinja_value.h"

namespace troupe::tokenizers::jinja {

namespace detail {
struct Stmt;
struct Scope;
}  // namespace detail

// The jinja2 Environment settings that change what a template renders. The defaults are transformers' chat-template
// environment; lm-evaluation-harness's prompt templates use Environment::lm_eval() (no block trimming, the trailing
// newline kept, StrictUndefined).
struct Environment {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  bool strict_undefined = false;        // jinja2.StrictUndefined instead of the default Undefined
  std::string label = "chat template";  // how errors name the template: "LABEL 'NAME': line N: ..."
  static Environment lm_eval() { return {false, false, true, true, "template"}; }
};

class Template {
 public:
  // Parses `source` once. `name` names the template in errors: a template that does not parse throws DataError
  // "chat template 'NAME': line N: MESSAGE".
  Template(std::string source, std::string name, Environment environment = {});

  // Renders with `vars` (values by name) on top of the environment's globals. A failing operation throws DataError
  // "chat template 'NAME': line N: MESSAGE"; raise_exception(msg) throws RaisedError "chat template raised: msg
  // (template 'NAME', line N)".
  std::string render(const std::vector<std::pair<std::string, Value>>& vars) const;
  // The same with the variables of a JSON object (object keys keep their document order).
  std::string render(const nlohmann::ordered_json& vars) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Environment env_;
  std::shared_ptr<const std::vector<std::unique_ptr<detail::Stmt>>> body_;
  std::shared_ptr<detail::Scope> globals_;  // range, dict, namespace, ...: built once, never written by a render
};

}  // namespace troupe::tokenizers::jinja
