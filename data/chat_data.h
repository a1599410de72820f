// Conversations (TRL's conversational format: lists of {"role", "content", ...} messages) turned into training text
// through a Hugging Face chat template (tokenizers/chat_template.h): the spans of an SFT conversation that carry a
// loss (its assistant turns), the prompt and completions of a conversational preference pair, and the prompt of an
// RL or evaluation prompt line. Not tokenization policy or truncation (data/text_datasets.h does both) and not the
// template engine.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace troupe::tokenizers {
class BpeTokenizer;
class ChatTemplate;
}  // namespace troupe::tokenizers

namespace troupe::data {

// A piece of a rendered conversation: an assistant turn with the end-of-turn text its template writes after it
// (trained), or everything between two such turns (not trained).
struct ChatSpan {
  std::string text;
  bool trained = false;
};

// The chat template of a tokenizer_config.json (the "default" one), or null for an empty path: what the
// data.chat_template, prompts.chat_template and --chat-template settings load. DataError naming the file when it has
// no usable chat_template.
std::shared_ptr<const tokenizers::ChatTemplate> load_chat_template(const std::string& tokenizer_config_json);

// TRL's is_conversational for one value: a non-empty JSON array whose first element is an object with "role".
bool is_conversation(const nlohmann::ordered_json& value);

// The chat template, or ConfigError "<where>: a conversation ('<field>' is a list of messages) needs a chat
// template: set <key>" when `tmpl` is null. `key` names the setting to use: data.chat_template, prompts.chat_template,
// --chat-template.
const tokenizers::ChatTemplate& require_chat_template(const tokenizers::ChatTemplate* tmpl, const std::string& where,
                                                      const std::string& field, const std::string& key);

// The render of a whole conversation cut into alternating untrained / trained spans, TRL's assistant_only_loss.
// Assistant turn i spans render(messages[:i], add_generation_prompt=true) to render(messages[:i+1], false), both of
// which must be prefixes of the full render(messages, false) (else DataError "<where>: the chat template is not
// prefix-stable ..."). The text after the last assistant turn is left out: it is trained on nowhere, so the loss
// over what stays is unchanged (a causal model does not see later tokens). Example (Zephyr's template, user "Hi",
// assistant "Hello!", user "2+2?", assistant "4"):
//   {"<|user|>\nHi</s>\n<|assistant|>\n", untrained}, {"Hello!</s>\n", trained},
//   {"<|user|>\n2+2?</s>\n<|assistant|>\n", untrained}, {"4</s>\n", trained}
// DataError naming `where` for messages that are not a list of objects with a string "role", a conversation
// without an assistant turn or starting with one (it would have no prompt), an assistant turn that renders to no
// text, or a failing template.
std::vector<ChatSpan> assistant_spans(const tokenizers::ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
                                      const std::string& where);

// The texts of a conversational preference pair, ready to be tokenized as prompt, chosen and rejected.
struct ChatPreferenceText {
  std::string prompt;    // render(prompt, add_generation_prompt=true)
  std::string chosen;    // render(prompt + chosen, false) after the prompt's text
  std::string rejected;  // the same for rejected
};

// TRL's conversational preference line: prompt a list of messages, chosen and rejected lists of the messages that
// follow it (usually one assistant message each). DataError naming `where` when a completion's render does not
// start with the prompt's (the template is not prefix-stable), when a value is not a list of messages, or when the
// template fails.
ChatPreferenceText render_preference(const tokenizers::ChatTemplate& tmpl, const nlohmann::ordered_json& prompt,
                                     const nlohmann::ordered_json& chosen, const nlohmann::ordered_json& rejected,
                                     const std::string& where);

// TRL's extract_prompt (what maybe_extract_prompt calls for a line without "prompt") on two full conversations:
// the prompt is the messages before the first index where chosen and rejected differ, chosen and rejected are the
// rest. As in TRL, when one list is a prefix of the other (no index differs) the split is at the shorter length
// minus one. Example: chosen [u, a1], rejected [u, a2] -> prompt [u], chosen [a1], rejected [a2]. DataError naming
// `where` when the prompt comes out empty (the conversations differ from their first message).
struct SplitConversation {
  nlohmann::ordered_json prompt, chosen, rejected;
};
SplitConversation extract_prompt(const nlohmann::ordered_json& chosen, const nlohmann::ordered_json& rejected,
                                 const std::string& where);

// One line of an RL or evaluation prompt file: `field` holding text, or "messages" (or `field` itself, TRL's
// conversational prompt-only form) holding a conversation, rendered with add_generation_prompt=true through `tmpl`
// (ConfigError naming where and `template_key` when it is null). DataError naming where when neither is present.
struct PromptText {
  std::string text;
  bool chat = false;  // rendered from messages: special-token text in it is meant as the special tokens
};
PromptText prompt_of_line(const nlohmann::ordered_json& line, const std::string& field,
                          const tokenizers::ChatTemplate* tmpl, const std::string& template_key,
                          const std::string& where);

// Every special token of `tok`: what a rendered template's text is encoded with, so that "<|eot_id|>" in the
// template's output becomes that token (as transformers' tokenizers treat added tokens).
std::set<std::string> special_token_texts(const tokenizers::BpeTokenizer& tok);

// The ids of a prompt line: chat prompts with every special token allowed, text prompts as ordinary text.
std::vector<int> encode_prompt(const tokenizers::BpeTokenizer& tok, const PromptText& prompt);

}  // namespace troupe::data
