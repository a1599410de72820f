// Implementation of data/chat_data.h: renders of conversation prefixes compared as strings.
#include "data/chat_data.h"

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/chat_template.h"

namespace troupe::data {
namespace {

using ojson = nlohmann::ordered_json;

// DataError naming where and field unless `value` is a non-empty list of objects with a string "role".
void check_messages(const ojson& value, const std::string& where, const std::string& field) {
  if (!value.is_array() || value.empty()) {
    throw DataError(where + ": '" + field + "' must be a non-empty list of messages, got " +
                    (value.is_array() ? std::string("an empty list") : std::string(value.type_name())));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const ojson& m = value[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      throw DataError(where + ": '" + field + "'[" + std::to_string(i) +
                      "] must be a message object with a string \"role\", got " +
                      (m.is_object() ? std::string("an object without one") : std::string(m.type_name())));
    }
  }
}

// messages[from, to) as a new list.
ojson slice(const ojson& messages, size_t from, size_t to) {
  ojson out = ojson::array();
  for (size_t i = from; i < to; ++i) out.push_back(messages[i]);
  return out;
}

// tmpl.render with the template's own errors prefixed by `where`.
std::string render(const tokenizers::ChatTemplate& tmpl, const ojson& messages, bool add_generation_prompt,
                   const std::string& where) {
  try {
    return tmpl.render(messages, add_generation_prompt);
  } catch (const DataError& e) {
    throw DataError(where + ": " + e.what());
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

[[noreturn]] void not_prefix_stable(const tokenizers::ChatTemplate& tmpl, const std::string& where,
                                    const std::string& what) {
  throw DataError(where + ": the chat template '" + tmpl.name() + "' is not prefix-stable: " + what +
                  "; its assistant turns cannot be located in the rendered text");
}

}  // namespace

std::shared_ptr<const tokenizers::ChatTemplate> load_chat_template(const std::string& tokenizer_config_json) {
  if (tokenizer_config_json.empty()) return nullptr;
  return std::make_shared<const tokenizers::ChatTemplate>(
      tokenizers::ChatTemplate::from_tokenizer_config(tokenizer_config_json));
}

bool is_conversation(const ojson& value) {
  return value.is_array() && !value.empty() && value[0].is_object() && value[0].contains("role");
}

const tokenizers::ChatTemplate& require_chat_template(const tokenizers::ChatTemplate* tmpl, const std::string& where,
                                                      const std::string& field, const std::string& key) {
  if (tmpl != nullptr) return *tmpl;
  throw ConfigError(where + ": a conversation ('" + field + "' is a list of messages) needs a chat template: set " +
                    key + " to a tokenizer_config.json with a chat_template");
}

std::vector<ChatSpan> assistant_spans(const tokenizers::ChatTemplate& tmpl, const ojson& messages,
                                      const std::string& where) {
  check_messages(messages, where, "messages");
  const std::string full = render(tmpl, messages, false, where);
  std::vector<ChatSpan> spans;
  size_t done = 0;  // bytes of `full` already in spans
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    if (i == 0) throw DataError(where + ": the conversation starts with an assistant turn: it has no prompt");
    const std::string before = render(tmpl, slice(messages, 0, i), true, where);
    const std::string after = render(tmpl, slice(messages, 0, i + 1), false, where);
    const std::string turn = "messages[" + std::to_string(i) + "]";
    if (!starts_with(full, before))
      not_prefix_stable(tmpl, where,
                        "the render up to " + turn + " with a generation prompt is not a prefix of the whole");
    if (!starts_with(full, after))
      not_prefix_stable(tmpl, where, "the render up to and including " + turn + " is not a prefix of the whole");
    if (before.size() < done || after.size() < before.size())
      not_prefix_stable(tmpl, where, "the renders around " + turn + " do not follow each other");
    if (after.size() == before.size()) throw DataError(where + ": " + turn + " (assistant) renders to no text");
    if (before.size() > done) spans.push_back({full.substr(done, before.size() - done), false});
    spans.push_back({full.substr(before.size(), after.size() - before.size()), true});
    done = after.size();
  }
  if (spans.empty()) throw DataError(where + ": the conversation has no assistant turn to train on");
  return spans;
}

ChatPreferenceText render_preference(const tokenizers::ChatTemplate& tmpl, const ojson& prompt, const ojson& chosen,
                                     const ojson& rejected, const std::string& where) {
  check_messages(prompt, where, "prompt");
  ChatPreferenceText out;
  out.prompt = render(tmpl, prompt, true, where);
  auto completion = [&](const ojson& messages, const std::string& field) {
    check_messages(messages, where, field);
    ojson all = prompt;
    for (const ojson& m : messages) all.push_back(m);
    std::string text = render(tmpl, all, false, where);
    if (!starts_with(text, out.prompt))
      not_prefix_stable(tmpl, where, "the render of prompt + " + field + " does not start with the prompt's");
    return text.substr(out.prompt.size());
  };
  out.chosen = completion(chosen, "chosen");
  out.rejected = completion(rejected, "rejected");
  return out;
}

SplitConversation extract_prompt(const ojson& chosen, const ojson& rejected, const std::string& where) {
  check_messages(chosen, where, "chosen");
  check_messages(rejected, where, "rejected");
  const size_t n = std::min(chosen.size(), rejected.size());
  size_t idx = 0;  // Python's loop variable after `for idx in range(n): if differ: break`
  for (idx = 0; idx < n; ++idx)
    if (chosen[idx] != rejected[idx]) break;
  if (idx == n) idx = n - 1;  // no break: the loop variable keeps its last value
  if (idx == 0) throw DataError(where + ": chosen and rejected differ from their first message: no shared prompt");
  return {slice(chosen, 0, idx), slice(chosen, idx, chosen.size()), slice(rejected, idx, rejected.size())};
}

PromptText prompt_of_line(const ojson& line, const std::string& field, const tokenizers::ChatTemplate* tmpl,
                          const std::string& template_key, const std::string& where) {
  const auto text = line.find(field);
  if (text != line.end() && text->is_string()) return {text->get<std::string>(), false};
  // {"messages": [...]}, or TRL's conversational prompt-only form {"prompt": [...]}.
  const bool in_field = text != line.end() && text->is_array();
  const auto messages = in_field ? text : line.find("messages");
  if (messages == line.end()) {
    throw DataError(where + ": expected a string field '" + field + "' or a conversation under 'messages'");
  }
  const std::string name = in_field ? field : "messages";
  check_messages(*messages, where, name);
  const tokenizers::ChatTemplate& t = require_chat_template(tmpl, where, name, template_key);
  return {render(t, *messages, true, where), true};
}

std::set<std::string> special_token_texts(const tokenizers::BpeTokenizer& tok) {
  std::set<std::string> out;
  for (const auto& [text, id] : tok.spec().special_tokens) out.insert(text);
  return out;
}

std::vector<int> encode_prompt(const tokenizers::BpeTokenizer& tok, const PromptText& prompt) {
  if (!prompt.chat) return tok.encode_ordinary(prompt.text);
  return tok.encode(prompt.text, special_token_texts(tok));
}

}  // namespace troupe::data
