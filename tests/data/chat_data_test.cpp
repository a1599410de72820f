// Tests for conversations in training data (data/chat_data.h through data/text_datasets.h): with Llama 3.2's real
// chat template and GPT-2's byte-level BPE plus Llama 3's special tokens, a two-turn conversation's labels are
// exactly its assistant turns with their end-of-turn text (earlier turn included) in collate_sft, in pack_sft and
// after truncation; Zephyr's spans and a preference pair by hand; TRL's prompt extraction; the errors (a template
// that renders turns in reverse is not prefix-stable; a conversation without a chat template names the key to set).
#include "data/chat_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "core/errors.h"
#include "data/text_datasets.h"
#include "tests/support/test_support.h"
#include "tokenizers/chat_template.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::data {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_file;
using tokenizers::BpeTokenizer;
using tokenizers::ChatTemplate;
using ojson = nlohmann::ordered_json;

constexpr int kEndOfText = 50256;  // GPT-2's <|endoftext|>: the eos_id that text lines get and conversations must not
constexpr int kEotId = 50260;

// GPT-2's vocabulary with Llama 3's chat special tokens added after it.
const BpeTokenizer& llama_tok() {
  static const BpeTokenizer tok = [] {
    tokenizers::BpeSpec spec =
        tokenizers::open_tokenizer((testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string()).spec();
    spec.special_tokens["<|begin_of_text|>"] = 50257;
    spec.special_tokens["<|start_header_id|>"] = 50258;
    spec.special_tokens["<|end_header_id|>"] = 50259;
    spec.special_tokens["<|eot_id|>"] = kEotId;
    return BpeTokenizer(spec);
  }();
  return tok;
}

fs::path fixture(const std::string& name) {
  return testing::source_dir() / "tests/fixtures/chat_templates" / (name + ".json");
}

std::shared_ptr<const ChatTemplate> llama3() {
  static const auto tmpl = load_chat_template(fixture("llama3_2_instruct").string());
  return tmpl;
}

TextDatasetOptions chat_options() {
  TextDatasetOptions o;
  o.eos_id = kEndOfText;
  o.threads = 2;
  o.chat_template = llama3();
  return o;
}

const char* kConversation =
    R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},)"
    R"( {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]})";

const ojson& conversation() {
  static const ojson messages = ojson::parse(kConversation)["messages"];
  return messages;
}

std::vector<int> ids_of(const at::Tensor& t) {
  const at::Tensor r = t.contiguous();
  const int64_t* p = r.data_ptr<int64_t>();
  return std::vector<int>(p, p + r.numel());
}

// The decoded runs of consecutive positions whose label is not ignored: `labels` aligned with `ids`.
std::vector<std::string> labelled_runs(const std::vector<int>& ids, const std::vector<int>& labels) {
  std::vector<std::string> runs;
  std::vector<int> run;
  for (size_t t = 0; t <= labels.size(); ++t) {
    if (t < labels.size() && labels[t] != kIgnoreIndex) {
      EXPECT_EQ(labels[t], ids[t]) << "position " << t;
      run.push_back(ids[t]);
    } else if (!run.empty()) {
      runs.push_back(llama_tok().decode(run));
      run.clear();
    }
  }
  return runs;
}

SftDataset load_conversation(const TextDatasetOptions& o) {
  ScratchDir dir;
  write_file(dir / "chat.jsonl", std::string(kConversation) + "\n");
  return load_sft_jsonl(llama_tok(), dir / "chat.jsonl", o);
}

TEST(ChatSpans, ZephyrConversationCutsIntoItsAssistantTurnsByHand) {
  const ChatTemplate zephyr = ChatTemplate::from_tokenizer_config(fixture("zephyr_7b_beta"));
  ojson messages = conversation();
  messages[2]["content"] = "2+2?";
  const std::vector<ChatSpan> spans = assistant_spans(zephyr, messages, "x:1");
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].text, "<|user|>\nHi</s>\n<|assistant|>\n");
  EXPECT_EQ(spans[1].text, "Hello!</s>\n");
  EXPECT_EQ(spans[2].text, "<|user|>\n2+2?</s>\n<|assistant|>\n");
  EXPECT_EQ(spans[3].text, "4</s>\n");
  EXPECT_THAT((std::vector<bool>{spans[0].trained, spans[1].trained, spans[2].trained, spans[3].trained}),
              ElementsAre(false, true, false, true));
  // A trailing user turn is trained nowhere and left out.
  messages.push_back({{"role", "user"}, {"content", "Thanks"}});
  EXPECT_EQ(assistant_spans(zephyr, messages, "x:1").size(), 4u);
}

TEST(ChatSft, CollatedLabelsAreExactlyTheAssistantTurnsWithTheirEndOfTurn) {
  const SftDataset data = load_conversation(chat_options());
  ASSERT_EQ(data.examples.size(), 1u);
  const SftExample& ex = data.examples[0];
  EXPECT_EQ(llama_tok().decode(ex.response), "4<|eot_id|>");  // no eos_id appended: the template ended the turn
  ASSERT_EQ(ex.prompt_loss.size(), ex.prompt.size());

  // The pieces are tokenized separately and concatenated, special-token text becoming the special token.
  std::vector<int> expected;
  for (const ChatSpan& span : assistant_spans(*llama3(), conversation(), "x:1")) {
    const auto ids = llama_tok().encode(span.text, special_token_texts(llama_tok()));
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  const TextBatch batch = collate_sft(data.examples, kEndOfText);
  const std::vector<int> ids = ids_of(batch.input_ids[0]);
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(llama_tok().decode(ids), llama3()->render(conversation(), false));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kEotId), 5);  // system, user, assistant, user, assistant
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50258), 5);   // one <|start_header_id|> per turn
  EXPECT_THAT(labelled_runs(ids, ids_of(batch.labels[0])), ElementsAre("Hello!<|eot_id|>", "4<|eot_id|>"));
  EXPECT_EQ(data.stats.tokens, static_cast<int64_t>(ids.size()));
}

TEST(ChatSft, PackedTargetsAreTheSameAssistantTurns) {
  SftDataset data = load_conversation(chat_options());
  data.examples.insert(data.examples.begin(), SftExample{{10, 11}, {12, 13}, {}});  // a text example before it
  const PackedSftBatch p = pack_sft(data.examples, 256, kEndOfText);
  ASSERT_EQ(p.inputs.size(0), 1);
  // Segment 2 is the conversation: inputs ids[0, n-1), targets ids[1, n).
  const at::Tensor in_conv = p.segment_ids[0] == 2;
  const std::vector<int> inputs = ids_of(p.inputs[0].masked_select(in_conv));
  const std::vector<int> targets = ids_of(p.targets[0].masked_select(in_conv));
  std::vector<int> next(inputs.begin() + 1, inputs.end());
  next.push_back(data.examples[1].response.back());
  EXPECT_THAT(labelled_runs(next, targets), ElementsAre("Hello!<|eot_id|>", "4<|eot_id|>"));
  // The same tokens carry a loss as in the padded batch.
  const TextBatch padded = collate_sft(data.examples, kEndOfText);
  EXPECT_EQ((p.targets != kIgnoreIndex).sum().item<int64_t>(),
            (padded.labels.slice(1, 1) != kIgnoreIndex).sum().item<int64_t>());
}

TEST(ChatSft, TruncationCutsThePromptsLossMaskWithItsHead) {
  const SftExample full = load_conversation(chat_options()).examples[0];
  const auto first = static_cast<int64_t>(std::find(full.prompt_loss.begin(), full.prompt_loss.end(), 1) -
                                          full.prompt_loss.begin());  // "Hello"
  const auto P = static_cast<int64_t>(full.prompt.size()), R = static_cast<int64_t>(full.response.size());
  TextDatasetOptions o = chat_options();
  o.max_prompt_length = 1;
  // Keep the prompt from the second token of the first assistant turn: "!<|eot_id|>" of it stays trained.
  o.max_length = P - first - 1 + R;
  const SftDataset cut = load_conversation(o);
  ASSERT_EQ(cut.stats.truncated, 1);
  const SftExample& ex = cut.examples[0];
  EXPECT_EQ(ex.prompt.size(), static_cast<size_t>(P - first - 1));
  ASSERT_EQ(ex.prompt_loss.size(), ex.prompt.size());
  const TextBatch batch = collate_sft(cut.examples, kEndOfText);
  EXPECT_THAT(labelled_runs(ids_of(batch.input_ids[0]), ids_of(batch.labels[0])),
              ElementsAre("!<|eot_id|>", "4<|eot_id|>"));
  const PackedSftBatch p = pack_sft(cut.examples, 256, kEndOfText);
  const std::vector<int> packed = ids_of(p.inputs[0]);
  std::vector<int> next(packed.begin() + 1, packed.end());
  next.push_back(ex.response.back());
  // Packed, the first token has no context: "!" is a target of "Hello"'s position no more, "<|eot_id|>" is.
  EXPECT_THAT(labelled_runs(next, ids_of(p.targets[0])), ElementsAre("<|eot_id|>", "4<|eot_id|>"));

  // Cut past the first assistant turn: no earlier loss is left, the mask is empty.
  o.max_length = P - first - 3 + R;  // from the header after "Hello" "!" "<|eot_id|>" on
  const SftExample later = load_conversation(o).examples[0];
  EXPECT_TRUE(later.prompt_loss.empty());
  const TextBatch later_batch = collate_sft({later}, kEndOfText);
  EXPECT_THAT(labelled_runs(ids_of(later_batch.input_ids[0]), ids_of(later_batch.labels[0])),
              ElementsAre("4<|eot_id|>"));
}

TEST(ChatPreference, ConversationalPairIsPromptWithGenerationPromptThenEachTurn) {
  const ChatTemplate zephyr = ChatTemplate::from_tokenizer_config(fixture("zephyr_7b_beta"));
  const ojson prompt = ojson::parse(R"([{"role": "user", "content": "Hi"}])");
  const ChatPreferenceText t =
      render_preference(zephyr, prompt, ojson::parse(R"([{"role": "assistant", "content":
      "Hello!"}])"),
                        ojson::parse(R"([{"role": "assistant", "content": "Go away."}])"), "x:1");
  EXPECT_EQ(t.prompt, "<|user|>\nHi</s>\n<|assistant|>\n");
  EXPECT_EQ(t.chosen, "Hello!</s>\n");
  EXPECT_EQ(t.rejected, "Go away.</s>\n");

  // Through the loader, in TRL's explicit-prompt and implicit-prompt forms: the same example.
  ScratchDir dir;
  write_file(dir / "pref.jsonl",
             R"({"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": )"
             R"("Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]})"
             "\n"
             R"({"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], )"
             R"("rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]})"
             "\n"
             R"({"prompt": "Hi", "chosen": " there", "rejected": " you"})"
             "\n");
  const PreferenceDataset data = load_preference_jsonl(llama_tok(), dir / "pref.jsonl", chat_options());
  ASSERT_EQ(data.examples.size(), 3u);
  const PreferenceExample& ex = data.examples[0];
  EXPECT_EQ(llama_tok().decode(ex.prompt), llama3()->render(prompt, true));
  EXPECT_EQ(ex.prompt.back(), llama_tok().encode_ordinary("\n\n").back());  // "...assistant<|end_header_id|>\n\n"
  std::vector<int> chosen = llama_tok().encode_ordinary("Hello!"), rejected = llama_tok().encode_ordinary("Go away.");
  chosen.push_back(kEotId);
  rejected.push_back(kEotId);
  EXPECT_EQ(ex.chosen, chosen);  // no eos_id after the template's <|eot_id|>
  EXPECT_EQ(ex.rejected, rejected);
  EXPECT_EQ(data.examples[1].prompt, ex.prompt);
  EXPECT_EQ(data.examples[1].chosen, ex.chosen);
  EXPECT_EQ(data.examples[1].rejected, ex.rejected);
  EXPECT_EQ(data.examples[2].chosen.back(), kEndOfText);  // a text line in the same file keeps its EOS
}

TEST(ChatPreference, ExtractPromptSplitsAtTheFirstDifferentMessageAsTrlDoes) {
  const ojson u = {{"role", "user"}, {"content", "Hi"}}, a1 = {{"role", "assistant"}, {"content", "A"}},
              a2 = {{"role", "assistant"}, {"content", "B"}}, u2 = {{"role", "user"}, {"content", "More"}};
  SplitConversation s = extract_prompt(ojson::array({u, a1}), ojson::array({u, a2}), "x:1");
  EXPECT_EQ(s.prompt, ojson::array({u}));
  EXPECT_EQ(s.chosen, ojson::array({a1}));
  EXPECT_EQ(s.rejected, ojson::array({a2}));
  // No index differs: TRL's loop variable stops at the shorter length - 1.
  s = extract_prompt(ojson::array({u, a1, u2, a1}), ojson::array({u, a1}), "x:1");
  EXPECT_EQ(s.prompt, ojson::array({u}));
  EXPECT_EQ(s.chosen, ojson::array({a1, u2, a1}));
  EXPECT_EQ(s.rejected, ojson::array({a1}));
  EXPECT_THROW(extract_prompt(ojson::array({a1}), ojson::array({a2}), "x:1"), DataError);
}

TEST(ChatPrompts, MessagesLinesRenderWithTheGenerationPrompt) {
  const ojson line = ojson::parse(kConversation);
  const ojson first_turn = {{"messages", ojson::array({conversation()[0]})}};
  const PromptText p = prompt_of_line(first_turn, "prompt", llama3().get(), "prompts.chat_template", "x:1");
  EXPECT_TRUE(p.chat);
  EXPECT_EQ(p.text, llama3()->render(first_turn["messages"], true));
  const std::vector<int> ids = encode_prompt(llama_tok(), p);
  EXPECT_EQ(ids.front(), 50257);  // <|begin_of_text|> as one token
  EXPECT_EQ(llama_tok().decode(ids), p.text);
  // TRL's conversational prompt form {"prompt": [...]} too; text lines as before.
  EXPECT_EQ(prompt_of_line({{"prompt", first_turn["messages"]}}, "prompt", llama3().get(), "k", "x:1").text, p.text);
  const PromptText text = prompt_of_line({{"prompt", "<|eot_id|>"}}, "prompt", llama3().get(), "k", "x:1");
  EXPECT_FALSE(text.chat);
  EXPECT_GT(encode_prompt(llama_tok(), text).size(), 1u);  // plain text stays ordinary text
  try {
    prompt_of_line(line, "prompt", nullptr, "prompts.chat_template", "prompts.jsonl:7");
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("prompts.jsonl:7"));
    EXPECT_THAT(e.what(), HasSubstr("set prompts.chat_template"));
  }
  EXPECT_THROW(prompt_of_line({{"text", "x"}}, "prompt", nullptr, "k", "x:1"), DataError);
}

// A template that renders the turns last first: no render of a prefix is a prefix of the whole.
std::shared_ptr<const ChatTemplate> reversed() {
  return std::make_shared<const ChatTemplate>(
      "{% for m in messages|reverse %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}assistant: {% endif %}",
      "reversed", std::nullopt, std::nullopt);
}

template <class E>
void expect_error(const std::function<void()>& load, const std::vector<std::string>& parts) {
  try {
    load();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    for (const std::string& part : parts) EXPECT_THAT(e.what(), HasSubstr(part));
  }
}

TEST(ChatErrors, NonPrefixStableTemplatesAndMissingTemplatesNameTheLine) {
  ScratchDir dir;
  const fs::path sft = dir / "sft.jsonl", pref = dir / "pref.jsonl";
  write_file(sft, "{\"prompt\": \"p\", \"response\": \"r\"}\n" + std::string(kConversation) + "\n");
  write_file(pref, R"({"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", )"
                   R"("content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]})"
                   "\n");
  TextDatasetOptions o = chat_options();
  o.chat_template = reversed();
  expect_error<DataError>([&] { load_sft_jsonl(llama_tok(), sft, o); }, {sft.string() + ":2", "not prefix-stable"});
  expect_error<DataError>([&] { load_preference_jsonl(llama_tok(), pref, o); },
                          {pref.string() + ":1", "not prefix-stable"});
  o.chat_template = nullptr;
  expect_error<ConfigError>([&] { load_sft_jsonl(llama_tok(), sft, o); },
                            {sft.string() + ":2", "set data.chat_template"});
  expect_error<ConfigError>([&] { load_preference_jsonl(llama_tok(), pref, o); },
                            {pref.string() + ":1", "set data.chat_template"});

  // Conversations the template cannot train on.
  o.chat_template = llama3();
  auto bad = [&](const std::string& line, const std::string& what) {
    write_file(sft, line + "\n");
    expect_error<DataError>([&] { load_sft_jsonl(llama_tok(), sft, o); }, {sft.string() + ":1", what});
  };
  bad(R"({"messages": [{"role": "user", "content": "Hi"}]})", "no assistant turn");
  bad(R"({"messages": [{"role": "assistant", "content": "Hi"}]})", "starts with an assistant turn");
  bad(R"({"messages": "Hi"})", "must be a non-empty list of messages");
  bad(R"({"messages": [{"content": "Hi"}]})", "string \"role\"");
}

}  // namespace
}  // namespace troupe::data
