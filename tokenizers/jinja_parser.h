// The parser of Troupe's Jinja engine: jinja2's Parser (jinja2/parser.py) over the lexer's tokens, producing
// tokenizers/jinja_ast.h. Errors are SyntaxError with the line and what was expected ("unexpected 'endfor' (expected
// 'endif')"); an unknown filter or test is an error here unless it sits inside an if or conditional expression, where
// jinja2 too only fails if it runs. Unsupported statements (extends, include, import, block, recursive loops) are
// errors naming themselves.
#pragma once

#include <string_view>

#include "tokenizers/jinja_ast.h"
#include "tokenizers/jinja_lexer.h"

namespace troupe::tokenizers::jinja::detail {

Body parse(std::string_view source, const LexOptions& options = {});

// The filters and tests jinja2 defines (the supported ones and the rest, which fail when they run).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace troupe::tokenizers::jinja::detail
