// Hugging Face chat templates: a model's tokenizer_config.json "chat_template" rendered over a conversation exactly as
// transformers' tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...) does (byte for
// byte; tests/tokenizers/chat_template_test.cpp checks real templates against transformers itself). The Jinja
// engine is tokenizers/jinja.h.
//
//   auto tmpl = ChatTemplate::from_tokenizer_config("model/tokenizer_config.json");
//   std::string prompt = tmpl.render(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Hi"}])"), true);
//
// Messages are JSON (nlohmann::ordered_json, so that each message's and each tool schema's keys keep their order:
// templates iterate dicts and tojson prints them in insertion order). Not here: tokenization of the rendered text,
// continue_final_message and assistant-token masks.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tokenizers/jinja.h"

namespace troupe::tokenizers {

class ChatTemplate {
 public:
  // Reads `tokenizer_config_json`: "chat_template" (a string, or a list of {"name", "template"} from which `name` is
  // taken) and "bos_token"/"eos_token" (strings or AddedToken objects {"content": ...}; null or absent ones stay
  // undefined in the template, as in transformers). Throws DataError naming the file on a missing or bad field.
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& tokenizer_config_json,
                                            const std::string& name = "default");

  // Parses `source` once (DataError "chat template 'NAME': line N: ..." if it does not parse).
  ChatTemplate(std::string source, std::string name, std::optional<std::string> bos_token,
               std::optional<std::string> eos_token);

  // Renders `messages` (a non-empty JSON array of message objects: role, content and any other fields such as
  // tool_calls) as apply_chat_template does: keys whose value is null are dropped, reasoning fields are aliased
  // (reasoning_content / thinking / reasoning), and the template sees messages, tools and documents (from
  // `extra_context`, else none), add_generation_prompt, bos_token, eos_token and every other `extra_context` entry
  // (which overrides the special tokens). Throws DataError for bad input or a failing template (RaisedError for
  // the template's raise_exception, "chat template raised: <msg> ...").
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object()) const;
  // The same for nlohmann::json input (whose objects are sorted by key: dict order in the output follows that).
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const nlohmann::json& extra_context = nlohmann::json::object()) const;

  const std::string& name() const { return template_.name(); }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  jinja::Template template_;
  std::optional<std::string> bos_token_;
  std::optional<std::string> eos_token_;
};

}  // namespace troupe::tokenizers
