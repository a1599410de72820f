// ChatTemplate: tokenizer_config.json reading and transformers' apply_chat_template preprocessing around the Jinja
// engine. See chat_template.h.
#include "tokenizers/chat_template.h"

#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace troupe::tokenizers {
namespace {

using ojson = nlohmann::ordered_json;

// A special token from tokenizer_config.json: a string, an AddedToken object, or null/absent.
std::optional<std::string> special_token(const ojson& config, const char* key, const std::string& file) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  throw DataError(file + ": \"" + key + "\" must be a string or an AddedToken object with \"content\"");
}

std::string pick_template(const ojson& config, const std::string& name, const std::string& file) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) throw DataError(file + ": no \"chat_template\"");
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) throw DataError(file + ": \"chat_template\" must be a string or a list of named templates");
  std::string names;
  for (const auto& entry : *it) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
        !entry["template"].is_string()) {
      throw DataError(file + ": each named chat template must be {\"name\": ..., \"template\": ...}");
    }
    if (entry["name"] == name) return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
  }
  throw DataError(file + ": no chat template named '" + name + "' (available: " + names + ")");
}

// transformers' _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}.
ojson alias_reasoning(const ojson& message) {
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    auto it = message.find(key);
    if (it == message.end() || it->is_null()) continue;
    ojson reasoning = *it;
    ojson out = ojson::object();
    out["thinking"] = reasoning;
    for (const auto& [k, v] : message.items()) out[k] = v;
    out["reasoning_content"] = reasoning;
    return out;
  }
  return message;
}

}  // namespace

ChatTemplate ChatTemplate::from_tokenizer_config(const std::filesystem::path& tokenizer_config_json,
                                                 const std::string& name) {
  const std::string file = tokenizer_config_json.string();
  std::ifstream in(tokenizer_config_json);
  if (!in) throw IoError("cannot open " + file);
  std::stringstream text;
  text << in.rdbuf();
  ojson config;
  try {
    config = ojson::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw DataError(file + ": not JSON: " + e.what());
  }
  if (!config.is_object()) throw DataError(file + ": not a JSON object");
  std::string source = pick_template(config, name, file);
  bool named = config["chat_template"].is_array();
  std::string display = tokenizer_config_json.filename().string() + (named ? "[" + name + "]" : "");
  return ChatTemplate(std::move(source), display, special_token(config, "bos_token", file),
                      special_token(config, "eos_token", file));
}

ChatTemplate::ChatTemplate(std::string source, std::string name, std::optional<std::string> bos_token,
                           std::optional<std::string> eos_token)
    : source_(source),
      template_(std::move(source), std::move(name)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)) {}

std::string ChatTemplate::render(const ojson& messages, bool add_generation_prompt, const ojson& extra_context) const {
  const std::string what = "chat template '" + name() + "': ";
  if (!messages.is_array()) throw DataError(what + "messages must be a JSON array");
  if (messages.empty()) throw DataError(what + "cannot apply a chat template to an empty conversation");
  if (!extra_context.is_object()) throw DataError(what + "the extra context must be a JSON object");
  ojson chat = ojson::array();
  for (const auto& message : messages) {
    if (!message.is_object()) throw DataError(what + "each message must be a JSON object, got " + message.dump());
    ojson kept = ojson::object();
    for (const auto& [k, v] : message.items()) {
      if (!v.is_null()) kept[k] = v;  // apply_chat_template drops None values
    }
    chat.push_back(alias_reasoning(kept));
  }
  ojson vars = ojson::object();
  vars["messages"] = std::move(chat);
  vars["tools"] = extra_context.contains("tools") ? extra_context["tools"] : ojson();
  vars["documents"] = extra_context.contains("documents") ? extra_context["documents"] : ojson();
  vars["add_generation_prompt"] = add_generation_prompt;
  if (bos_token_) vars["bos_token"] = *bos_token_;
  if (eos_token_) vars["eos_token"] = *eos_token_;
  for (const auto& [k, v] : extra_context.items()) {
    if (k == "messages" || k == "add_generation_prompt") {
      throw DataError(what + "\"" + k + "\" cannot be passed in the extra context");
    }
    if (k != "tools" && k != "documents") vars[k] = v;
  }
  return template_.render(vars);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra_context) const {
  return render(ojson::parse(messages.dump()), add_generation_prompt, ojson::parse(extra_context.dump()));
}

}  // namespace troupe::tokenizers
