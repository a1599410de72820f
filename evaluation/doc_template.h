// lm-evaluation-harness's prompt fields: doc_to_text / doc_to_target / doc_to_choice are a document's field when it
// has one of that name, else a Jinja template rendered over the document as lm-eval renders it (jinja2's
// Environment with StrictUndefined and keep_trailing_newline; tokenizers/jinja.h), with its conversions: a rendered
// target of digits is an index when there are choices, a rendered "[...]" is a Python list literal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace troupe::evaluation {

// The raw value of a field or the rendered template (a JSON string). `what` names the task and key in errors.
nlohmann::json resolve_doc_field(const std::string& spec, const nlohmann::json& doc, const std::string& what);
// Python's ast.literal_eval of a list of strings and numbers ("['a', \"b\", 3]"); DataError naming `what` otherwise.
nlohmann::json parse_python_list(const std::string& text, const std::string& what);

}  // namespace troupe::evaluation
