// dataprep/clean_pipeline.h: a seeded corpus with planted documents (short, repetitive, contaminated, exact and near
// duplicates, HTML, URLs, mojibake, PII) through the full stage list against the stage functions applied by hand;
// the same bytes for 1 and 3 threads; config errors naming file:line; the report read back from an HDF5 run log.
#include "dataprep/clean_pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/errors.h"
#include "core/run_log.h"
#include "dataprep/markup.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

using Json = nlohmann::ordered_json;

const char* const kFullStages =
    "stages: [{normalize: NFC}, html, {urls: \"\"}, mojibake, whitespace, pii, gopher_quality, gopher_repetition,\n"
    "         {decontaminate: {eval_files: [eval.jsonl], n: 13}},\n"
    "         {dedup: {exact: true, near: true, threshold: 0.8, num_perm: 128}}, stats]\n";

// `n` seeded words from a vocabulary of 300 made-up words of 4-8 letters, with stop words mixed in, as sentences.
std::string prose(std::mt19937& rng, int n) {
  static const std::vector<std::string> vocab = [] {
    std::mt19937 g(7);
    std::vector<std::string> v;
    for (int i = 0; i < 300; ++i) {
      std::string w;
      for (int k = 0, len = 4 + static_cast<int>(g() % 5); k < len; ++k) w += static_cast<char>('a' + g() % 26);
      v.push_back(w);
    }
    return v;
  }();
  static const std::vector<std::string> stop = {"the", "and", "of", "to", "with", "that"};
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += i == 0 ? "" : (i % 12 == 0 ? ". " : " ");
    out += rng() % 4 == 0 ? stop[rng() % stop.size()] : vocab[rng() % vocab.size()];
  }
  return out + ".";
}

struct Corpus {
  std::vector<std::string> texts;  // every document's text, in input order (JSONL first, then the text file)
  std::string eval_text;
};

// Writes corpus.jsonl (id and meta fields beside text), notes.txt (blank-line-separated) and eval.jsonl.
Corpus write_corpus(const std::filesystem::path& dir) {
  std::mt19937 rng(1234);
  Corpus c;
  for (int i = 0; i < 12; ++i) c.texts.push_back(prose(rng, 80 + i));
  c.eval_text = prose(rng, 40);
  c.texts[5] += " Mail bob@corp.com today.";  // a second e-mail: each document's replacements start the cycle again
  const std::string a = c.texts[0], b = c.texts[1];
  c.texts.push_back("Too short to keep.");  // gopher_short_doc
  std::string rep;
  for (int i = 0; i < 10; ++i) rep += "the cat and the dog of the house sat with that old man\n";
  c.texts.push_back(rep);  // a gopher_repetition reason
  c.texts.push_back(prose(rng, 50) + " " + c.eval_text.substr(0, 120) + " " + prose(rng, 20));  // contaminated
  std::string spaced;
  for (const char ch : a) spaced += ch == ' ' ? std::string(" \t ") : std::string(1, ch);
  c.texts.push_back("  " + spaced + "\n\n");                  // exact duplicate of texts[0]
  c.texts.push_back(b.substr(0, b.rfind(' ')) + " zzzzqq.");  // near duplicate of texts[1]
  c.texts.push_back("<p>" + prose(rng, 70) +
                    " see https://example.org/x?y=1 and write to a.b@corp.com from "
                    "8.8.4.4</p><script>x()</script><p>Caf\xc3\x83\xc2\xa9 &amp; " +
                    prose(rng, 20) + "</p>");
  c.texts.push_back(
      "1 22 333 4 55 66 77 88 99 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 "
      "32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53");  // a gopher_quality reason
  std::string jsonl;
  for (size_t i = 0; i < c.texts.size(); ++i)
    jsonl += Json{{"id", i}, {"text", c.texts[i]}, {"meta", {{"src", "web"}, {"n", i * 2}}}}.dump() + "\n";
  testing::write_file(dir / "corpus.jsonl", jsonl);
  const std::string note1 = prose(rng, 60), note2 = prose(rng, 90);
  std::string n1 = note1, n2 = note2;
  std::replace(n1.begin(), n1.end(), '.', '\n');
  c.texts.push_back(n1.substr(0, n1.find_last_not_of('\n') + 1));
  c.texts.push_back(note2);
  testing::write_file(dir / "notes.txt", "\n\n" + c.texts[c.texts.size() - 2] + "\n\n\n" + note2 + "\n");
  testing::write_file(dir / "eval.jsonl", Json{{"text", c.eval_text}}.dump() + "\n");
  return c;
}

CleanConfig config_in(const std::filesystem::path& dir, const std::string& extra) {
  const std::string yaml = "inputs: [corpus.jsonl, notes.txt]\noutput: out.jsonl\n" + extra + kFullStages;
  testing::write_file(dir / "clean.yaml", yaml);
  return load_clean_config(dir / "clean.yaml");
}

// The stages applied by hand, in order, as the pipeline documents them.
struct Expected {
  std::vector<size_t> kept;  // input indices written
  std::vector<std::string> texts;
  std::map<std::string, int64_t> removed;
  PiiCounts pii;
  std::vector<int64_t> in, out;  // per stage
};

Expected by_hand(const Corpus& c) {
  Expected e;
  e.in.assign(11, 0);
  e.out.assign(11, 0);
  DecontamIndex index;
  index.add("eval", c.eval_text);
  std::vector<size_t> survivors;
  std::vector<std::string> texts;
  for (size_t i = 0; i < c.texts.size(); ++i) {
    std::string t = c.texts[i];
    const std::vector<std::function<std::string()>> steps = {
        [&] { return t = normalize(t, NormalForm::kNfc), std::string(); },
        [&] { return t = html_to_text(t), std::string(); },
        [&] { return t = replace_urls(t, ""), std::string(); },
        [&] { return t = fix_mojibake(t), std::string(); },
        [&] { return t = clean_whitespace(t), std::string(); },
        [&] { return t = PiiMasker().mask(t, &e.pii), std::string(); },
        [&] { return gopher_quality(t).reason; },
        [&] { return gopher_repetition(t).reason; },
        [&] { return std::string(index.check(t).contaminated ? "contaminated" : ""); }};
    bool keep = true;
    for (size_t s = 0; s < steps.size() && keep; ++s) {
      ++e.in[s];
      const std::string reason = steps[s]();
      if (!reason.empty())
        ++e.removed[reason], keep = false;
      else
        ++e.out[s];
    }
    if (keep) survivors.push_back(i), texts.push_back(t);
  }
  const DedupResult d = deduplicate(texts, DedupConfig{});
  e.in[9] = static_cast<int64_t>(texts.size());
  e.out[9] = e.in[10] = e.out[10] = static_cast<int64_t>(d.kept.size());
  if (d.exact_removed) e.removed["exact_duplicate"] = static_cast<int64_t>(d.exact_removed);
  if (d.near_removed) e.removed["near_duplicate"] = static_cast<int64_t>(d.near_removed);
  for (size_t k : d.kept) e.kept.push_back(survivors[k]), e.texts.push_back(texts[k]);
  return e;
}

std::vector<Json> read_jsonl(const std::filesystem::path& file) {
  std::vector<Json> out;
  std::istringstream in(testing::read_file(file));
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

TEST(CleanPipeline, FullStageListEqualsTheStagesByHand) {
  testing::ScratchDir dir("troupe-clean");
  const Corpus corpus = write_corpus(dir.path());
  const CleanConfig config = config_in(dir.path(), "chunk_size: 4\n");
  std::vector<CleanProgress> calls;
  const CleanReport report = run_clean(config, [&](const CleanProgress& p) { calls.push_back(p); });
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls[0].documents_read, 4);  // threads (1) * chunk_size (4)
  EXPECT_EQ(calls.back().documents_read, 21);
  EXPECT_EQ(calls.back().documents_written, 15);
  EXPECT_TRUE(calls.back().final_pass);
  EXPECT_EQ(calls.back().input_bytes, static_cast<int64_t>(std::filesystem::file_size(dir / "corpus.jsonl") +
                                                           std::filesystem::file_size(dir / "notes.txt")));
  EXPECT_EQ(calls.back().bytes_read, calls.back().input_bytes);
  const Expected e = by_hand(corpus);

  // Every planted document met the rule it was planted for, and the rest survived.
  EXPECT_EQ(e.removed.at("gopher_short_doc"), 1);
  EXPECT_EQ(e.removed.at("contaminated"), 1);
  EXPECT_EQ(e.removed.at("exact_duplicate"), 1);
  EXPECT_EQ(e.removed.at("near_duplicate"), 1);
  EXPECT_EQ(e.removed.at("gopher_below_avg_threshold"), 1);  // the digits
  EXPECT_EQ(e.removed.at("top_3_gram"), 1);                  // the repeated line
  EXPECT_EQ(e.removed.size(), 6u);
  EXPECT_EQ(e.kept.size(), 15u);
  EXPECT_EQ(e.pii.emails, 2u);
  EXPECT_EQ(e.pii.ipv4, 1u);
  EXPECT_EQ(report.documents_in, static_cast<int64_t>(corpus.texts.size()));
  EXPECT_EQ(report.documents_out, static_cast<int64_t>(e.kept.size()));
  EXPECT_EQ(report.removed(), e.removed);
  ASSERT_EQ(report.stages.size(), 11u);
  for (size_t s = 0; s < 11; ++s) {
    EXPECT_EQ(report.stages[s].documents_in, e.in[s]) << report.stages[s].stage;
    EXPECT_EQ(report.stages[s].documents_out, e.out[s]) << report.stages[s].stage;
  }
  EXPECT_EQ(report.stages[5].pii.emails, 2u);
  EXPECT_EQ(report.stages[5].pii.ipv4, 1u);
  EXPECT_EQ(report.stages[0].bytes_in, report.bytes_in);

  const auto lines = read_jsonl(dir / "out.jsonl");
  ASSERT_EQ(lines.size(), e.kept.size());
  int64_t bytes = 0;
  for (size_t k = 0; k < lines.size(); ++k) {
    const size_t i = e.kept[k];
    EXPECT_EQ(lines[k]["text"], e.texts[k]) << "document " << i;
    bytes += static_cast<int64_t>(e.texts[k].size());
    if (i < 19) {  // JSONL: the other fields kept, in their order
      EXPECT_EQ(lines[k]["id"], i);
      EXPECT_EQ(lines[k]["meta"]["n"], i * 2);
      EXPECT_EQ(lines[k].begin().key(), "id");
    } else {
      EXPECT_EQ(lines[k].size(), 1u);
    }
  }
  EXPECT_EQ(report.bytes_out, bytes);
  // The HTML document, checked by hand too: tags, script, URL gone, mojibake fixed, PII masked.
  const std::string html = lines[e.kept.size() - 3]["text"];
  EXPECT_NE(html.find("Caf\xc3\xa9 & "), std::string::npos) << html;
  EXPECT_NE(html.find("write to email@example.com from 22.214.171.124\n\nCaf"), std::string::npos) << html;
  EXPECT_EQ(html.find_first_of("<>"), std::string::npos) << html;
  EXPECT_EQ(html.find("http"), std::string::npos) << html;
  EXPECT_EQ(html.find("x()"), std::string::npos) << html;
  EXPECT_NE(std::string(lines[5]["text"]).find("Mail email@example.com today."), std::string::npos);
  EXPECT_EQ(report.stages[9].bytes_out, bytes);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.jsonl.spill"));

  CorpusStatsBuilder stats;
  for (const auto& t : e.texts) stats.add(t);
  ASSERT_TRUE(report.stats.has_value());
  EXPECT_EQ(format_corpus_stats(*report.stats), format_corpus_stats(stats.finish()));
  EXPECT_NE(report.summary().find("exact_duplicate=1"), std::string::npos) << report.summary();
}

TEST(CleanPipeline, OutputIsTheSameForAnyThreadCount) {
  testing::ScratchDir dir("troupe-clean");
  write_corpus(dir.path());
  CleanConfig one = config_in(dir.path(), "threads: 1\nchunk_size: 7\n");
  CleanConfig three = config_in(dir.path(), "threads: 3\nchunk_size: 2\n");
  three.output = (dir / "out3.jsonl").string();
  const auto r1 = run_clean(one);
  const auto r3 = run_clean(three);
  EXPECT_EQ(testing::read_file(dir / "out.jsonl"), testing::read_file(dir / "out3.jsonl"));
  EXPECT_EQ(r1.summary(), r3.summary());
  EXPECT_GT(r1.documents_out, 10);
}

std::string config_error(const std::string& stages_yaml) {
  testing::ScratchDir dir("troupe-clean");
  testing::write_file(dir / "clean.yaml", "inputs: [a.jsonl]\noutput: out.jsonl\nstages:\n" + stages_yaml);
  try {
    load_clean_config(dir / "clean.yaml");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    return msg.substr(msg.find("clean.yaml"));
  }
  return "no error";
}

TEST(CleanPipeline, ConfigErrorsNameFileAndLine) {
  EXPECT_EQ(config_error("  - html\n  - dedupe\n")
                .rfind("clean.yaml:5:5: stages[1]: unknown stage 'dedupe' (did you "
                       "mean 'dedup'?)",
                       0),
            0u)
      << config_error("  - html\n  - dedupe\n");
  const std::string option = config_error("  - html\n  - dedup: {treshold: 0.8}\n");
  EXPECT_EQ(option.rfind("clean.yaml:5:", 0), 0u) << option;
  EXPECT_NE(option.find("unknown key 'stages[1].dedup.treshold'"), std::string::npos) << option;
  const std::string form = config_error("  - normalize: NFX\n");
  EXPECT_EQ(form.rfind("clean.yaml:4:", 0), 0u) << form;
  EXPECT_NE(form.find("NFX"), std::string::npos) << form;
  const std::string order = config_error("  - dedup\n  - whitespace\n");
  EXPECT_EQ(order.rfind("clean.yaml:5:", 0), 0u) << order;
  const std::string value = config_error("  - html\n  - dedup: {threshold: 1.5}\n");
  EXPECT_EQ(value.rfind("clean.yaml:5:", 0), 0u) << value;
  EXPECT_EQ(config_error("  - html: {x: 1}\n").rfind("clean.yaml:4:", 0), 0u);
  EXPECT_EQ(config_error("  - pii: {emails: maybe}\n").rfind("clean.yaml:4:", 0), 0u);
  EXPECT_EQ(config_error("  - decontaminate: {n: 13}\n").rfind("clean.yaml:4:", 0), 0u);
  EXPECT_EQ(config_error("  - gopher_repetition: {top_n_grams: {two: 0.2}}\n").rfind("clean.yaml:4:", 0), 0u);
  EXPECT_EQ(config_error("  - gopher_repetition: {dup_n_grams: {5: 1.5}}\n").rfind("clean.yaml:4:", 0), 0u);
}

TEST(CleanPipeline, StageOptionsBind) {
  testing::ScratchDir dir("troupe-clean");
  testing::write_file(dir / "clean.yaml",
                      "inputs: [a.txt]\noutput: out/x.jsonl\nthreads: 2\ntext_split: lines\nstages:\n"
                      "  - normalize: NFKC\n  - urls: <URL>\n  - pii: {ipv6: true, email_replacements: [x@y.z]}\n"
                      "  - gopher_quality: {min_doc_words: 5, stop_words: [a]}\n"
                      "  - gopher_repetition: {top_n_grams: {10: 0.5, 2: 0.3}, dup_n_grams: {}}\n"
                      "  - decontaminate: {eval_files: [ev/e.txt], n: 8, min_matches: 2}\n"
                      "  - stats: {top_k: 3}\n  - dedup: {near: false, shingle: chars, shingle_size: 7}\n");
  const CleanConfig c = load_clean_config(dir / "clean.yaml");
  EXPECT_EQ(c.inputs, std::vector<std::string>{(dir / "a.txt").string()});
  EXPECT_EQ(c.output, (dir / "out/x.jsonl").string());
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.text_split, TextSplit::kLines);
  ASSERT_EQ(c.stages.size(), 8u);
  EXPECT_EQ(c.stages[0].form, NormalForm::kNfkc);
  EXPECT_EQ(c.stages[1].url_placeholder, "<URL>");
  EXPECT_TRUE(c.stages[2].pii.ipv6);
  EXPECT_EQ(c.stages[2].pii.email_replacements, std::vector<std::string>{"x@y.z"});
  EXPECT_EQ(c.stages[3].quality.min_doc_words, 5);
  EXPECT_EQ(c.stages[3].quality.stop_words, std::vector<std::string>{"a"});
  EXPECT_EQ(c.stages[4].repetition.top_n_grams, (std::vector<std::pair<int, double>>{{2, 0.3}, {10, 0.5}}));
  EXPECT_TRUE(c.stages[4].repetition.dup_n_grams.empty());
  EXPECT_EQ(c.stages[5].eval_files, std::vector<std::string>{(dir / "ev/e.txt").string()});
  EXPECT_EQ(c.stages[5].decontam.n, 8);
  EXPECT_EQ(c.stages[5].decontam.min_matches, 2);
  EXPECT_EQ(c.stages[6].top_k, 3);
  EXPECT_FALSE(c.stages[7].dedup.near);
  EXPECT_EQ(c.stages[7].dedup.shingle, ShingleKind::kChars);
  EXPECT_EQ(c.stages[7].dedup.shingle_size, 7);
}

TEST(CleanPipeline, StatsBeforeDedupAndNoDedupAndLineSplit) {
  testing::ScratchDir dir("troupe-clean");
  testing::write_file(dir / "a.txt", "Hello  world\n\nhello world\nA third one\n");
  testing::write_file(dir / "s.yaml",
                      "inputs: [a.txt]\noutput: s.jsonl\ntext_split: lines\n"
                      "stages: [whitespace, stats, {dedup: {near: false}}]\n");
  const auto r = run_clean(load_clean_config(dir / "s.yaml"));
  EXPECT_EQ(r.stats->documents, 3);  // before dedup: all three lines
  EXPECT_EQ(r.documents_out, 2);
  EXPECT_EQ(testing::read_file(dir / "s.jsonl"), "{\"text\":\"Hello world\"}\n{\"text\":\"A third one\"}\n");
  testing::write_file(dir / "n.yaml", "inputs: [a.txt]\noutput: n.jsonl\nstages: [whitespace, stats]\n");
  const auto n = run_clean(load_clean_config(dir / "n.yaml"));
  EXPECT_EQ(n.stats->documents, 2);  // blank-line blocks: "Hello  world" and the two lines after the blank one
  EXPECT_EQ(testing::read_file(dir / "n.jsonl"),
            "{\"text\":\"Hello world\"}\n{\"text\":\"hello world\\nA third one\"}\n");
  EXPECT_EQ(n.stages[1].documents_in, 2);
  EXPECT_EQ(n.stages[0].bytes_in - n.stages[0].bytes_out, 1);
  testing::write_file(dir / "o.yaml", "inputs: [a.txt]\noutput: ./a.txt\nstages: [whitespace]\n");
  EXPECT_THROW(run_clean(load_clean_config(dir / "o.yaml")), ConfigError);
  EXPECT_EQ(testing::read_file(dir / "a.txt"), "Hello  world\n\nhello world\nA third one\n");
  testing::write_file(dir / "d.yaml", "inputs: [a.txt]\noutput: new/dir/d.jsonl\nstages: [whitespace]\n");
  EXPECT_EQ(run_clean(load_clean_config(dir / "d.yaml")).documents_out, 2);
}

TEST(CleanPipeline, ReportReadsBackFromTheRunLog) {
  testing::ScratchDir dir("troupe-clean");
  write_corpus(dir.path());
  const CleanReport report = run_clean(config_in(dir.path(), ""));
  {
    auto log = core::RunLog::create(dir / "log.h5", "", core::RunMetadata{});
    report.write_report(log, 3);
    log.close();
  }
  core::RunLogReader reader(dir / "log.h5");
  const auto table = reader.table("clean_stages");
  ASSERT_EQ(table.at("stage").size(), 11u);
  for (size_t s = 0; s < 11; ++s) {
    EXPECT_EQ(table.at("stage")[s], report.stages[s].stage);
    EXPECT_EQ(table.at("documents_in")[s], std::to_string(report.stages[s].documents_in));
    EXPECT_EQ(table.at("bytes_out")[s], std::to_string(report.stages[s].bytes_out));
    EXPECT_EQ(table.at("step")[s], "3");
  }
  EXPECT_EQ(table.at("removed")[9], "exact_duplicate=1;near_duplicate=1");
  EXPECT_EQ(table.at("pii_emails")[5], "2");
  EXPECT_EQ(reader.metric("clean/removed/contaminated").values, std::vector<double>{1});
  EXPECT_EQ(reader.metric("clean/documents_out").values,
            std::vector<double>{static_cast<double>(report.documents_out)});
  EXPECT_EQ(reader.metric("clean/stats/documents").values,
            std::vector<double>{static_cast<double>(report.documents_out)});
  EXPECT_EQ(reader.attribute("clean_corpus_stats"), format_corpus_stats(*report.stats));
}

TEST(CleanPipeline, BadInputLineIsADataErrorNamingFileAndLine) {
  testing::ScratchDir dir("troupe-clean");
  testing::write_file(dir / "a.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n");
  testing::write_file(dir / "clean.yaml", "inputs: [a.jsonl]\noutput: out.jsonl\nstages: [whitespace]\n");
  try {
    run_clean(load_clean_config(dir / "clean.yaml"));
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:2: expected an object with a string field 'text'"), std::string::npos)
        << e.what();
  }
  // Malformed UTF-8 reaching a stage: the stage's DataError, with the document's file:line in front.
  testing::write_file(dir / "b.txt", "fine\n\nbad \xff byte\n");
  testing::write_file(dir / "b.yaml", "inputs: [b.txt]\noutput: out.jsonl\nstages: [html, normalize]\n");
  try {
    run_clean(load_clean_config(dir / "b.yaml"));
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("b.txt:3: stage "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::dataprep
