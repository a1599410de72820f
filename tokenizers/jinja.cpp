// Template: parse once, render many times; errors carry the template's name and line. See jinja.h.
#include "tokenizers/jinja.h"

#include "tokenizers/jinja_builtins.h"
#include "tokenizers/jinja_eval.h"
#include "tokenizers/jinja_parser.h"

namespace troupe::tokenizers::jinja {
namespace {

std::string where(const Environment& env, const std::string& name, int line) {
  return env.label + " '" + name + "': line " + std::to_string(line) + ": ";
}

}  // namespace

Template::Template(std::string source, std::string name, Environment environment)
    : name_(std::move(name)), env_(std::move(environment)) {
  const detail::LexOptions lex{env_.trim_blocks, env_.lstrip_blocks, env_.keep_trailing_newline};
  globals_ = std::make_shared<detail::Scope>();
  detail::add_globals(*globals_);
  try {
    body_ = std::make_shared<const detail::Body>(detail::parse(source, lex));
  } catch (const detail::SyntaxError& e) {
    throw DataError(where(env_, name_, e.line()) + e.what());
  } catch (const DataError& e) {
    throw DataError(where(env_, name_, 1) + e.what());
  }
}

std::string Template::render(const std::vector<std::pair<std::string, Value>>& vars) const {
  auto context = std::make_shared<detail::Scope>();
  context->parent = globals_;
  for (const auto& [k, v] : vars) context->vars[k] = v;
  detail::Evaluator ev;
  const StrictUndefinedScope strict(env_.strict_undefined);
  try {
    return ev.render(*body_, context);
  } catch (const RaisedError& e) {
    throw RaisedError(
        env_.label + " raised: " + e.raised() + " (template '" + name_ + "', line " + std::to_string(ev.line()) + ")",
        e.raised());
  } catch (const Error& e) {
    throw DataError(where(env_, name_, ev.line()) + e.what());
  }
}

std::string Template::render(const nlohmann::ordered_json& vars) const {
  if (!vars.is_object()) throw DataError(env_.label + " '" + name_ + "': the variables must be a JSON object");
  std::vector<std::pair<std::string, Value>> values;
  for (const auto& [k, v] : vars.items()) values.emplace_back(k, from_json(v));
  return render(values);
}

}  // namespace troupe::tokenizers::jinja
