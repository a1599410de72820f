// Tests of the dashboard's JSON API (dashboard/dashboard_api.h) against real run logs written here with RunLog:
// values equal what was logged, downsampling keeps extremes and ends, incremental and ranged fetches, the token
// check, traversal and bad requests, config diffs, tables, and Slurm records.
#include "dashboard/dashboard_api.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/run_log.h"
#include "dashboard/run_catalog.h"
#include "tests/support/test_support.h"

namespace troupe::dashboard {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kToken = "s3cret";
constexpr int kRows = 5000;

std::string fmt_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double loss_at(int64_t step) { return std::cos(static_cast<double>(step) * 0.01) + 0.001 * static_cast<double>(step); }

// runs/alpha: kRows rows of train/loss (a spike at 1234), a samples table, events; runs/sweep/beta: a short run.
class DashboardApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root() / "alpha");
    fs::create_directories(root() / "sweep" / "beta");
    core::RunMetadata meta;
    meta.start_time = "2026-12-06T08:00:00Z";
    {
      auto log = core::RunLog::create(root() / "alpha" / "log.h5",
                                      "kind: pretrain\nseed: 1\noptim:\n  lr: 0.001\n  betas: [0.9, 0.95]\n", meta);
      log.log_event(0, "start", "go");
      for (int64_t s = 0; s < kRows; ++s) {
        log.log_scalars(s, {{"train/loss", s == 1234 ? 99.0 : loss_at(s)}});
        if (s % 1000 == 0) log.log_table_row("samples", s, {{"prompt", "p" + std::to_string(s)}, {"reward", "0.5"}});
      }
      log.log_event(kRows, "checkpoint", "saved");
    }
    testing::write_file(root() / "alpha" / "status", "finished\n");
    auto beta =
        core::RunLog::create(root() / "sweep" / "beta" / "log.h5", "kind: ppo\nseed: 2\noptim:\n  lr: 0.01\n", meta);
    beta.log_scalars(3, {{"reward/mean", 0.25}});
    testing::write_file(root() / "sweep" / "beta" / "status", "running\n");
    testing::write_file(root() / "sweep" / "notarun" / "config.yaml", "kind: x\n");
  }

  fs::path root() const { return dir_.path() / "runs"; }

  HttpResponse get(const std::string& target, const std::string& token = kToken) {
    std::string head = "GET " + target;
    if (!token.empty()) head += std::string(target.find('?') == std::string::npos ? "?" : "&") + "token=" + token;
    return api_.handle(parse_request_head(head + " HTTP/1.1\r\nHost: x"));
  }
  json get_json(const std::string& target) {
    const HttpResponse r = get(target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return json::parse(r.body);
  }

  testing::ScratchDir dir_{"dashboard-api"};
  DashboardApi api_{ApiOptions{root(), kToken}};
};

TEST_F(DashboardApiTest, RefusesRequestsWithoutTheToken) {
  EXPECT_EQ(get("/api/runs", "").status, 403);
  EXPECT_EQ(get("/api/runs", "wrong").status, 403);
  EXPECT_EQ(get("/api/runs", "s3cre").status, 403);
  EXPECT_EQ(get("/", "").status, 403);
  EXPECT_EQ(get("/assets/app.js", "").status, 403);
  // The cookie the page sets carries it too.
  const auto with_cookie = [&](const std::string& cookie) {
    return api_.handle(parse_request_head("GET /api/runs HTTP/1.1\r\nCookie: " + cookie)).status;
  };
  EXPECT_EQ(with_cookie("troupe_token=s3cret"), 200);
  EXPECT_EQ(with_cookie("troupe_token=s3cret2"), 403);
  EXPECT_EQ(with_cookie("other=s3cret"), 403);
  const HttpResponse page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>Troupe dashboard</title>"), std::string::npos);
  bool cookie = false;
  for (const auto& [k, v] : page.headers) cookie |= k == "Set-Cookie" && v.rfind("troupe_token=s3cret;", 0) == 0;
  EXPECT_TRUE(cookie);
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST_F(DashboardApiTest, ListsRunsNestedWithKindStatusAndLatest) {
  const json runs = get_json("/api/runs")["runs"];
  ASSERT_EQ(runs.size(), 2u);  // sweep/notarun has no log.h5
  EXPECT_EQ(runs[0]["name"], "alpha");
  EXPECT_EQ(runs[0]["kind"], "pretrain");
  EXPECT_EQ(runs[0]["status"], "finished");
  EXPECT_EQ(runs[0]["step"], kRows - 1);
  EXPECT_EQ(runs[0]["start_time"], "2026-12-06T08:00:00Z");
  EXPECT_EQ(runs[0]["latest"]["train/loss"].get<double>(), loss_at(kRows - 1));
  EXPECT_EQ(runs[0]["slurm"], false);
  EXPECT_EQ(runs[1]["name"], "sweep/beta");
  EXPECT_EQ(runs[1]["kind"], "ppo");
  EXPECT_EQ(runs[1]["status"], "running");
  EXPECT_EQ(runs[1]["latest"]["reward/mean"].get<double>(), 0.25);
}

TEST_F(DashboardApiTest, RunDetailsHoldConfigMetricsTablesEvents) {
  const json run = get_json("/api/run?run=alpha");
  EXPECT_NE(run["config"].get<std::string>().find("lr: 0.001"), std::string::npos);
  ASSERT_EQ(run["metrics"].size(), 1u);
  EXPECT_EQ(run["metrics"][0]["name"], "train/loss");
  EXPECT_EQ(run["metrics"][0]["rows"], kRows);
  EXPECT_EQ(run["tables"], json::array({"samples"}));
  ASSERT_EQ(run["events"].size(), 2u);
  EXPECT_EQ(run["events"][1]["kind"], "checkpoint");
  EXPECT_EQ(run["events"][1]["step"], kRows);
  EXPECT_EQ(run["attributes"].count("config"), 0u);
}

TEST_F(DashboardApiTest, SeriesValuesEqualWhatWasLogged) {
  const json s = get_json("/api/series?run=alpha&metric=train/loss&max_points=20000");
  ASSERT_EQ(s["steps"].size(), static_cast<size_t>(kRows));
  EXPECT_EQ(s["downsampled"], false);
  EXPECT_EQ(s["rows"], kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    ASSERT_EQ(s["steps"][i].get<int64_t>(), i);
    ASSERT_EQ(s["values"][i].get<double>(), i == 1234 ? 99.0 : loss_at(i));  // bit-exact through JSON
  }
  EXPECT_GT(s["wall"][0].get<double>(), 1.7e9);
}

TEST_F(DashboardApiTest, DownsamplingKeepsExtremesAndEnds) {
  const json s = get_json("/api/series?run=alpha&metric=train/loss&max_points=100");
  const auto steps = s["steps"].get<std::vector<int64_t>>();
  const auto values = s["values"].get<std::vector<double>>();
  EXPECT_EQ(s["downsampled"], true);
  EXPECT_LE(steps.size(), 100u);
  EXPECT_EQ(steps.front(), 0);
  EXPECT_EQ(steps.back(), kRows - 1);
  EXPECT_EQ(*std::max_element(values.begin(), values.end()), 99.0);  // the spike at step 1234 survives
  double lo = 1e9;
  for (int64_t i = 0; i < kRows; ++i) lo = std::min(lo, i == 1234 ? 99.0 : loss_at(i));
  EXPECT_EQ(*std::min_element(values.begin(), values.end()), lo);
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i] != 1234) {
      EXPECT_EQ(values[i], loss_at(steps[i]));  // every kept point is a logged row
    }
  }
}

TEST_F(DashboardApiTest, IncrementalFetchReturnsOnlyNewRows) {
  const json tail = get_json("/api/series?run=alpha&metric=train/loss&from=4990");
  EXPECT_EQ(tail["from"], 4990);
  EXPECT_EQ(tail["steps"], json(std::vector<int64_t>{4990, 4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999}));
  EXPECT_EQ(tail["values"][9].get<double>(), loss_at(4999));
  EXPECT_EQ(get_json("/api/series?run=alpha&metric=train/loss&from=5000")["steps"].size(), 0u);
  // A client holding more rows than the log has (a resume truncated it) gets the whole series again.
  const json reset = get_json("/api/series?run=alpha&metric=train/loss&from=6000&max_points=100");
  EXPECT_EQ(reset["reset"], true);
  EXPECT_EQ(reset["steps"][0], 0);
  // A live log: rows appended after the first fetch come back on the next.
  auto log = core::RunLog::open_for_append(root() / "sweep" / "beta" / "log.h5");
  const json before = get_json("/api/series?run=sweep/beta&metric=reward/mean");
  ASSERT_EQ(before["rows"], 1);
  log.log_scalars(4, {{"reward/mean", 0.5}});
  log.log_scalars(5, {{"reward/mean", 0.75}});
  const json after = get_json("/api/series?run=sweep/beta&metric=reward/mean&from=1");
  EXPECT_EQ(after["rows"], 3);
  EXPECT_EQ(after["steps"], json({4, 5}));
  EXPECT_EQ(after["values"], json({0.5, 0.75}));
}

TEST_F(DashboardApiTest, RangedFetchCoversTheVisibleSteps) {
  const json s = get_json("/api/series?run=alpha&metric=train/loss&x=step&x0=1000&x1=1100");
  const auto steps = s["steps"].get<std::vector<int64_t>>();
  EXPECT_EQ(steps.front(), 999);  // one row beyond each edge
  EXPECT_EQ(steps.back(), 1101);
  EXPECT_EQ(steps.size(), 103u);
  EXPECT_EQ(s["ranged"], true);
  const double w = get_json("/api/series?run=alpha&metric=train/loss&from=2000")["wall"][0].get<double>();
  const json by_wall =
      get_json("/api/series?run=alpha&metric=train/loss&x=wall&x0=" + fmt_double(w) + "&x1=" + fmt_double(w));
  EXPECT_LE(by_wall["steps"][0].get<int64_t>(), 2000);
  EXPECT_GE(by_wall["steps"].back().get<int64_t>(), 2000);
}

TEST_F(DashboardApiTest, RefusesTraversalUnknownNamesAndBadParameters) {
  EXPECT_EQ(get("/api/run?run=../runs/alpha").status, 404);
  EXPECT_EQ(get("/api/run?run=%2Fetc%2Fpasswd").status, 404);
  EXPECT_EQ(get("/api/run?run=sweep/notarun").status, 404);
  EXPECT_EQ(get("/api/run?run=sweep/../alpha").status, 404);
  EXPECT_EQ(get("/api/run").status, 400);
  EXPECT_EQ(get("/assets/../../../etc/passwd").status, 404);
  EXPECT_EQ(get("/assets/%2e%2e%2fCMakeLists.txt").status, 404);
  EXPECT_EQ(get("/etc/passwd").status, 404);
  EXPECT_EQ(get("/api/series?run=alpha&metric=nope").status, 404);
  EXPECT_EQ(get("/api/series?run=alpha&metric=../../x").status, 404);
  EXPECT_EQ(get("/api/series?run=alpha&metric=train/loss&from=-1").status, 400);
  EXPECT_EQ(get("/api/series?run=alpha&metric=train/loss&from=1x").status, 400);
  EXPECT_EQ(get("/api/series?run=alpha&metric=train/loss&max_points=3").status, 400);
  EXPECT_EQ(get("/api/series?run=alpha&metric=train/loss&x=time").status, 400);
  EXPECT_EQ(get("/api/series?run=alpha&metric=train/loss&x0=abc").status, 400);
  EXPECT_EQ(get("/api/table?run=alpha&table=nope").status, 404);
  const json err = json::parse(get("/api/series?run=alpha&metric=train/loss&from=zz").body);
  EXPECT_NE(err["error"].get<std::string>().find("parameter 'from'"), std::string::npos);
}

TEST_F(DashboardApiTest, DiffsConfigsKeyByKey) {
  const json d = get_json("/api/diff?a=alpha&b=sweep/beta");
  std::map<std::string, std::pair<json, json>> got;
  for (const auto& e : d["differences"]) got[e["key"]] = {e["a"], e["b"]};
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(got["kind"], std::make_pair(json("pretrain"), json("ppo")));
  EXPECT_EQ(got["seed"], std::make_pair(json("1"), json("2")));
  EXPECT_EQ(got["optim.lr"], std::make_pair(json("0.001"), json("0.01")));
  EXPECT_EQ(got["optim.betas"], std::make_pair(json("[0.9, 0.95]"), json(nullptr)));
  EXPECT_EQ(d["equal"], 0);
}

TEST_F(DashboardApiTest, TablesGiveTheNewestRows) {
  const json t = get_json("/api/table?run=alpha&table=samples&last=2");
  EXPECT_EQ(t["total"], 5);
  EXPECT_EQ(t["columns"]["step"], json({"3000", "4000"}));
  EXPECT_EQ(t["columns"]["prompt"], json({"p3000", "p4000"}));
}

TEST_F(DashboardApiTest, SlurmRecordsOfRunsAndSweeps) {
  EXPECT_EQ(get_json("/api/slurm?run=alpha")["slurm"], false);
  testing::write_file(root() / "sweep" / "slurm" / "job_id", "77\n");
  testing::write_file(root() / "sweep" / "slurm" / "sweep.tsv",
                      "# index\trun\n0\t" + (root() / "sweep" / "beta").string() + "\n");
  testing::write_file(root() / "sweep" / "slurm" / "events",
                      "2026-12-06 troupe: submitted job 77\n2026-12-06 job 77_0: troupe checkpointed on SIGUSR1 "
                      "(exit 138); requeueing job 77_0\n");
  const auto beta = lookup_run(root(), "sweep/beta");
  ASSERT_TRUE(beta);
  const SlurmRecord r = slurm_record(*beta);
  EXPECT_TRUE(r.submitted);
  EXPECT_EQ(r.job_ids, std::vector<std::string>{"77_0"});
  EXPECT_EQ(r.requeues, 1);
  EXPECT_TRUE(r.requeued_last);
  EXPECT_EQ(summarize_run(*beta).status, "requeued");
}

TEST(RunCatalog, KeyMetricsPreferTheUsualOnes) {
  EXPECT_EQ(key_metrics({"a", "kl/mean", "time/x", "reward/mean", "b"}, 3),
            (std::vector<std::string>{"reward/mean", "kl/mean", "a"}));
  EXPECT_EQ(config_kind("kind: sft\nx: 1\n"), "sft");
  EXPECT_EQ(config_kind("::: not yaml ["), "");
}

}  // namespace
}  // namespace troupe::dashboard
