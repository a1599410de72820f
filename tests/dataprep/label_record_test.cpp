// dataprep/label_record.h, label_draft.h and label_agreement.h: the record line format, errors naming file:line and
// key, whole-line appends from several processes at once, the draft's ranking edits, and agreement statistics on a
// hand-computed pair of labellers.
#include "dataprep/label_record.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <random>

#include "core/errors.h"
#include "dataprep/label_agreement.h"
#include "dataprep/label_draft.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

void expect_data_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no DataError; expected one with: " << needle;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

LabelRecord make_record(const std::string& id, const std::string& labeller, std::vector<int> ranks,
                        std::vector<int> ratings) {
  LabelRecord r;
  r.id = id;
  r.labeller = labeller;
  r.prompt = "prompt " + id;
  r.responses.assign(ranks.size(), "");
  for (size_t i = 0; i < ranks.size(); ++i) r.responses[i] = "response " + std::to_string(i);
  r.ranks = std::move(ranks);
  r.ratings = std::move(ratings);
  r.flags.assign(r.ranks.size(), {});
  r.where = labeller + ".jsonl:" + id;
  return r;
}

TEST(LabelRecord, RankingsMustBeDense) {
  EXPECT_EQ(ranking_problem({1, 2, 1, 3}), std::nullopt);
  EXPECT_EQ(ranking_problem({1, 1}), std::nullopt);
  EXPECT_NE(ranking_problem({1, 3, 1}), std::nullopt);  // rank 2 missing
  EXPECT_NE(ranking_problem({2, 2}), std::nullopt);     // rank 1 missing
  EXPECT_NE(ranking_problem({1, 4, 2}), std::nullopt);  // 4 > K
}

TEST(LabelRecord, LineHasTheDocumentedKeysAndRoundTrips) {
  LabelRecord r = make_record("7", "alice", {1, 2}, {6, 4});
  r.flags = {{}, {LabelFlag::kHallucination, LabelFlag::kFailsInstruction}};
  r.comment = "ok";
  r.time = "2026-05-01T12:00:00Z";
  r.seconds = 1.5;
  const std::string line = record_json_line(r);
  EXPECT_EQ(line,
            "{\"id\":\"7\",\"labeller\":\"alice\",\"prompt\":\"prompt 7\",\"responses\":[\"response 0\",\"response "
            "1\"],\"ranks\":[1,2],\"ratings\":[6,4],\"flags\":[[],[\"fails_instruction\",\"hallucination\"]],"
            "\"comment\":\"ok\",\"time\":\"2026-05-01T12:00:00Z\",\"seconds\":1.5}\n");
  const LabelRecord back = parse_label_record(line, "x:1");
  EXPECT_EQ(back.ranks, r.ranks);
  EXPECT_EQ(back.ratings, r.ratings);
  EXPECT_EQ(back.flags,
            (std::vector<std::vector<LabelFlag>>{{}, {LabelFlag::kFailsInstruction, LabelFlag::kHallucination}}));
  EXPECT_EQ(back.comment, "ok");
  EXPECT_EQ(back.seconds, 1.5);

  LabelRecord s = r;
  s.skipped = true;
  const std::string skipped = record_json_line(s);
  EXPECT_EQ(skipped.find("ranks"), std::string::npos);
  EXPECT_TRUE(parse_label_record(skipped, "x:2").skipped);
}

TEST(LabelRecord, MalformedRecordsNameTheLineAndKey) {
  const std::string head = R"({"id":"a","labeller":"b","prompt":"p","responses":["x","y"],)";
  const std::string tail = R"("comment":"","time":"t","seconds":1})";
  expect_data_error(
      [&] { parse_label_record(head + R"("ranks":[1,2],"ratings":[1,8],"flags":[[],[]],)" + tail, "f.jsonl:3"); },
      "f.jsonl:3: key 'ratings': expected an array of 2 integers in 1..7");
  expect_data_error(
      [&] { parse_label_record(head + R"("ranks":[1,3],"ratings":[1,2],"flags":[[],[]],)" + tail, "f:4"); },
      "f:4: key 'ranks'");
  expect_data_error(
      [&] { parse_label_record(head + R"("ranks":[2,2],"ratings":[1,2],"flags":[[],[]],)" + tail, "f:5"); },
      "no response has rank 1");
  expect_data_error(
      [&] { parse_label_record(head + R"("ranks":[1,2],"ratings":[1,2],"flags":[[],["rude"]],)" + tail, "f:6"); },
      "f:6: key 'flags': unknown flag \"rude\"");
  expect_data_error([&] { parse_label_record(head + R"("ratings":[1,2],"flags":[[],[]],)" + tail, "f:7"); },
                    "f:7: key 'ranks': missing");
  expect_data_error([&] { parse_label_record(R"({"id":"a","prompt":"p","responses":["x","y"]})", "f:8"); },
                    "f:8: key 'labeller': missing");
  expect_data_error([&] { parse_label_record("{not json", "f:9"); }, "f:9: not valid JSON");
}

TEST(LabelRecord, MutatedLinesAreRecordsOrDataErrorsNothingElse) {
  LabelRecord r = make_record("7", "alice", {1, 2, 2}, {6, 4, 1});
  r.flags = {{LabelFlag::kHarmful}, {}, {LabelFlag::kMoralJudgement}};
  const std::string line = record_json_line(r);
  const std::string alphabet = "{}[]\",:0123456789-.eE truefalsnul\\\xc3\xa9\xff";
  std::mt19937 rng(19);
  size_t parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string m = line;
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: m.erase(at, 1 + rng() % 4); break;
        default: m.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (m.empty()) m = "{";
    }
    try {
      const LabelRecord back = parse_label_record(m, "m:1");
      ++parsed;
      if (!back.skipped) EXPECT_EQ(ranking_problem(back.ranks), std::nullopt) << m;
    } catch (const DataError&) {
    }  // any other exception fails the test
  }
  EXPECT_GT(parsed, 100u);  // some mutations keep a valid record (a changed digit, a space)
}

TEST(LabelRecord, ItemsDefaultTheirIdToTheLineNumberAndRejectBadLines) {
  testing::ScratchDir dir("troupe-label-items");
  const auto good = (dir / "in.jsonl").string();
  testing::write_file(good,
                      "{\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}\n\n{\"id\":\"x\",\"prompt\":\"q\","
                      "\"responses\":[\"a\",\"b\",\"c\"]}\n");
  const auto items = read_label_items(good);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id, "1");
  EXPECT_EQ(items[1].id, "x");
  EXPECT_EQ(items[1].where, good + ":3");
  const auto bad = (dir / "bad.jsonl").string();
  testing::write_file(bad,
                      "{\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}\n{\"prompt\":\"p\",\"responses\":[\"a\"]}\n");
  expect_data_error([&] { read_label_items(bad); }, bad + ":2: key 'responses': expected at least 2 responses");
  testing::write_file(
      bad,
      "{\"id\":\"2\",\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}\n{\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}\n");
  expect_data_error([&] { read_label_items(bad); }, bad + ":2: key 'id': id \"2\" appears twice");
  testing::write_file(bad, "{\"responses\":[\"a\",\"b\"]}\n");
  expect_data_error([&] { read_label_items(bad); }, bad + ":1: key 'prompt': missing");
}

TEST(LabelRecord, ACutOffLastLineIsAnErrorAndAMissingFileHasNoRecords) {
  testing::ScratchDir dir("troupe-label-records");
  const auto out = (dir / "out.jsonl").string();
  EXPECT_TRUE(read_label_records(out).empty());
  const std::string line = record_json_line(make_record("1", "a", {1, 2}, {3, 4}));
  testing::write_file(out, line + line.substr(0, 20));
  expect_data_error([&] { read_label_records(out); }, out + ":2: the last line has no newline");
}

TEST(LabelRecord, ConcurrentAppendsFromSeveralProcessesNeverInterleave) {
  testing::ScratchDir dir("troupe-label-append");
  const auto out = (dir / "out.jsonl").string();
  constexpr int kProcesses = 4, kEach = 150;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      LabelRecord r = make_record("", "labeller" + std::to_string(p), {1, 2, 2}, {7, 1, 1});
      r.comment = std::string(3000, 'c');  // lines of several KB
      for (int i = 0; i < kEach; ++i) {
        r.id = std::to_string(i);
        append_record_line(out, record_json_line(r));
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_TRUE(
        testing::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(120)));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto records = read_label_records(out);
  EXPECT_EQ(records.size(), static_cast<size_t>(kProcesses * kEach));
}

TEST(LabelRecord, RetractRemovesTheLastLineOnlyWhileNothingFollowsIt) {
  testing::ScratchDir dir("troupe-label-retract");
  const auto out = (dir / "out.jsonl").string();
  const std::string a = record_json_line(make_record("1", "a", {1, 2}, {3, 4}));
  const std::string b = record_json_line(make_record("2", "a", {2, 1}, {3, 4}));
  const AppendedLine at_a = append_record_line(out, a);
  const AppendedLine at_b = append_record_line(out, b);
  EXPECT_EQ(at_a.start, 0);
  EXPECT_EQ(at_b.start, at_a.end);
  EXPECT_FALSE(retract_line(out, at_a, a));  // b follows it
  EXPECT_FALSE(retract_line(out, at_b, a));  // not the line that is there
  EXPECT_TRUE(retract_line(out, at_b, b));
  EXPECT_EQ(testing::read_file(out), a);
  EXPECT_TRUE(retract_line(out, at_a, a));
  EXPECT_EQ(testing::read_file(out), "");
}

TEST(LabelDraft, RanksWithTiesAndCompleteness) {
  LabelDraft d(3);
  EXPECT_FALSE(d.touched());
  EXPECT_NE(d.problem(), std::nullopt);
  for (size_t i = 0; i < 3; ++i) d.rate(i, 5);
  EXPECT_NE(d.problem()->find("no rank"), std::string::npos);
  d.rank_worse(0);   // unranked -> just below the worst so far: 1
  d.rank_worse(1);   // -> 2
  d.rank_better(2);  // unranked -> 1: a tie with response 1
  EXPECT_EQ(*d.rank(0), 1);
  EXPECT_EQ(*d.rank(1), 2);
  EXPECT_EQ(*d.rank(2), 1);
  EXPECT_EQ(d.problem(), std::nullopt);
  d.set_rank(1, 3);  // a gap: 1, 3, 1
  EXPECT_NE(d.problem()->find("no response has rank 2"), std::string::npos);
  d.rank_better(1);
  d.toggle_flag(1, LabelFlag::kHarmful);
  d.toggle_flag(1, LabelFlag::kHallucination);
  d.toggle_flag(1, LabelFlag::kHarmful);
  LabelItem item{"q1", "prompt", {"a", "b", "c"}, "in:1"};
  const LabelRecord r = d.to_record(item, "ann", 2.0);
  EXPECT_EQ(r.ranks, (std::vector<int>{1, 2, 1}));
  EXPECT_EQ(r.ratings, (std::vector<int>{5, 5, 5}));
  EXPECT_EQ(r.flags[1], (std::vector<LabelFlag>{LabelFlag::kHallucination}));
  const LabelDraft again = LabelDraft::from_record(r);  // undo reopens the draft as submitted
  EXPECT_EQ(*again.rank(1), 2);
  EXPECT_EQ(*again.rating(2), 5);
  EXPECT_EQ(again.flags(1), (std::set<LabelFlag>{LabelFlag::kHallucination}));
  EXPECT_THROW(d.rate(0, 8), ConfigError);
  EXPECT_THROW(d.set_rank(0, 4), ConfigError);
}

TEST(LabelAgreement, HandComputedPairOfLabellers) {
  std::vector<LabelRecord> recs = {
      make_record("p1", "A", {1, 2, 3}, {7, 4, 1}), make_record("p2", "A", {1, 1, 2}, {5, 5, 2}),
      make_record("p1", "B", {1, 3, 2}, {7, 3, 1}), make_record("p2", "B", {2, 1, 3}, {4, 5, 2}),
      make_record("p1", "C", {1, 2, 3}, {1, 1, 1}),  // replaced by C's next record of p1
      make_record("p1", "C", {1, 2, 2}, {6, 4, 2}), make_record("p3", "C", {1, 2}, {1, 2})};
  recs.push_back(make_record("p2", "C", {1, 2, 3}, {1, 1, 1}));
  recs.back().skipped = true;
  const AgreementReport r = compute_agreement(recs);
  EXPECT_EQ(r.labellers, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(r.labelled, (std::vector<size_t>{2, 2, 2}));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_EQ(r.skipped, 1u);
  ASSERT_EQ(r.pairs.size(), 3u);
  const PairAgreement& ab = r.pairs[0];
  EXPECT_EQ(ab.prompts, 2u);
  // Ratings (7,4,1,5,5,2) vs (7,3,1,4,5,2): po = 4/6, pe = 6/36 -> (24 - 6) / (36 - 6).
  EXPECT_EQ(ab.rating_items, 6u);
  EXPECT_NEAR(ab.rating_kappa, 0.6, 1e-15);
  EXPECT_NEAR(ab.rating_agreement, 4.0 / 6, 1e-15);
  // Preferences (i better, tie, j better = 0, 1, 2): A (0,0,0, 1,0,0), B (0,0,2, 2,0,0): po = 4/6, pe = 20/36.
  EXPECT_EQ(ab.preference_items, 6u);
  EXPECT_NEAR(ab.preference_kappa, 0.25, 1e-15);
  EXPECT_NEAR(ab.preference_agreement_with_ties, 4.0 / 6, 1e-15);
  EXPECT_EQ(ab.strict_pairs, 5u);  // A tied p2's pair (1, 2)
  EXPECT_EQ(ab.strict_agreements, 4u);
  EXPECT_NEAR(ab.preference_agreement, 0.8, 1e-15);
  // Fleiss: only p1 was labelled by all three.
  EXPECT_EQ(r.fleiss.labellers, 3u);
  EXPECT_EQ(r.fleiss.prompts, 1u);
  EXPECT_EQ(r.fleiss.rating_items, 3u);
  EXPECT_EQ(r.fleiss.preference_items, 3u);
  EXPECT_EQ(r.strict_pairs, ab.strict_pairs + r.pairs[1].strict_pairs + r.pairs[2].strict_pairs);
}

TEST(LabelAgreement, ClearErrors) {
  expect_data_error(
      [] {
        compute_agreement({make_record("p1", "A", {1, 2}, {1, 2})});
      },
      "at least 2 labellers (not skipped); labellers: A (1 prompts)");
  auto other = make_record("p1", "B", {1, 2}, {1, 2});
  other.responses[1] = "something else";
  expect_data_error(
      [&] {
        compute_agreement({make_record("p1", "A", {1, 2}, {1, 2}), other});
      },
      "A.jsonl:p1 and B.jsonl:p1: id \"p1\" has a different prompt or responses");
}

}  // namespace
}  // namespace troupe::dataprep
