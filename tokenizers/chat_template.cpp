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

// One message as transformers hands it to the template: keys whose value is null dropped (apply_chat_template), then
// _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r} for the first of reasoning_content /
// thinking / reasoning that is set.
jinja::Value message_value(const ojson& message) {
  jinja::DictData d;
  d.items.reserve(message.size() + 2);
  std::optional<jinja::Value> reasoning;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    auto it = message.find(key);
    if (it != message.end() && !it->is_null()) {
      reasoning = jinja::from_json(*it);
      break;
    }
  }
  if (reasoning) d.items.emplace_back(jinja::Value::string("thinking"), *reasoning);
  for (const auto& [k, v] : message.items()) {
    if (v.is_null()) continue;
    jinja::Value key = jinja::Value::string(k);
    if (reasoning && k == "thinking") {
      d.set(key, jinja::from_json(v));  // **message overrides the "thinking" put first (keeping its place)
    } else if (reasoning && k == "reasoning_content") {
      d.set(key, *reasoning);
    } else {
      d.items.emplace_back(std::move(key), jinja::from_json(v));
    }
  }
  if (reasoning) d.set(jinja::Value::string("reasoning_content"), *reasoning);
  return jinja::Value::dict(std::move(d));
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
  std::vector<jinja::Value> chat;
  chat.reserve(messages.size());
  for (const auto& message : messages) {
    if (!message.is_object()) throw DataError(what + "each message must be a JSON object, got " + message.dump());
    chat.push_back(message_value(message));
  }
  std::vector<std::pair<std::string, jinja::Value>> vars;
  vars.emplace_back("messages", jinja::Value::list(std::move(chat)));
  auto from_extra = [&](const char* key) {
    auto it = extra_context.find(key);
    return it != extra_context.end() ? jinja::from_json(*it) : jinja::Value::none();
  };
  vars.emplace_back("tools", from_extra("tools"));
  vars.emplace_back("documents", from_extra("documents"));
  vars.emplace_back("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  if (bos_token_) vars.emplace_back("bos_token", jinja::Value::string(*bos_token_));
  if (eos_token_) vars.emplace_back("eos_token", jinja::Value::string(*eos_token_));
  for (const auto& [k, v] : extra_context.items()) {
    if (k == "messages" || k == "add_generation_prompt") {
      throw DataError(what + "\"" + k + "\" cannot be passed in the extra context");
    }
    if (k != "tools" && k != "documents") vars.emplace_back(k, jinja::from_json(v));  // later entries win
  }
  return template_.render(vars);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra_context) const {
  return render(ojson::parse(messages.dump()), add_generation_prompt, ojson::parse(extra_context.dump()));
}

}  // namespace troupe::tokenizers
