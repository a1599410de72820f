// distributed/worker_launch.h without starting anything: the launch plan's command lines for local, mpirun and
// srun groups, and the file-based rendezvous store (atomic values, deadlines, an aborting liveness check).
#include "distributed/worker_launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "core/errors.h"
#include "distributed/curve_keys.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

WorkerLaunchOptions options() {
  WorkerLaunchOptions o;
  o.executable = "/opt/troupe";
  o.config = "/r/config.yaml";
  o.dir = "/r/workers";
  o.ipc_prefix = "ipc:///tmp/troupe-7-";
  return o;
}

TEST(WorkerLaunch, OneProcessPerGroupWithEndpointsAndRendezvousKeys) {
  const auto plan = plan_worker_launches({{{"actor"}, 1, ""}, {{"reward", "reference"}, 1, ""}}, options());
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].label, "actor");
  EXPECT_THAT(plan[0].argv,
              ElementsAre("/opt/troupe", "worker", "--config", "/r/config.yaml", "--role", "actor", "--endpoint",
                          "ipc:///tmp/troupe-7-actor.sock", "--endpoint-file", "/r/workers/actor.endpoint"));
  EXPECT_EQ(plan[0].log, "/r/workers/actor.log");
  EXPECT_EQ(plan[1].label, "reward+reference");
  EXPECT_EQ(plan[1].keys.at("reference"), "reference.endpoint");
  EXPECT_EQ(plan[1].log, "/r/workers/reward+reference.log");

  auto tcp = options();
  tcp.tcp = true;
  tcp.bind_host = "0.0.0.0";
  EXPECT_EQ(plan_worker_launches({{{"critic"}, 1, ""}}, tcp)[0].argv[7], "tcp://0.0.0.0:*");
}

TEST(WorkerLaunch, DataParallelGroupsRunUnderMpirunOrAsSrunSteps) {
  auto o = options();
  EXPECT_THROW(plan_worker_launches({{{"actor"}, 2, ""}}, o), ConfigError);  // no mpirun
  o.mpirun = "/usr/bin/mpirun";
  o.as_root = true;
  const auto local = plan_worker_launches({{{"actor"}, 2, ""}}, o)[0];
  EXPECT_THAT(std::vector<std::string>(local.argv.begin(), local.argv.begin() + 11),
              ElementsAre("/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca",
                          "btl", "self,vader", "-np", "2", "/opt/troupe"));
  o.srun = "/usr/bin/srun";
  const auto step = plan_worker_launches({{{"critic"}, 3, "--nodes=1  --nodelist=n2"}}, o)[0];
  EXPECT_THAT(std::vector<std::string>(step.argv.begin(), step.argv.begin() + 9),
              ElementsAre("/usr/bin/srun", "--mpi=pmix", "--overlap", "--ntasks=3", "--kill-on-bad-exit=1",
                          "--job-name=troupe-critic", "--nodes=1", "--nodelist=n2", "/opt/troupe"));
}

TEST(WorkerLaunch, CurveKeysReachWorkersThroughTheEnvironmentNeverArgv) {
  testing::ScratchDir dir;
  const CurveKeys keys = generate_curve_keys();
  const auto file = dir / "keys" / "curve.keys";
  write_curve_keys(file, keys);
  auto o = options();
  o.tcp = true;
  o.curve_keys = file;
  o.mpirun = "/usr/bin/mpirun";
  std::vector<WorkerLaunch> plans = plan_worker_launches({{{"actor"}, 1, ""}, {{"critic"}, 2, ""}}, o);
  o.srun = "/usr/bin/srun";
  const auto steps = plan_worker_launches({{{"reward", "reference"}, 1, ""}}, o);
  plans.insert(plans.end(), steps.begin(), steps.end());
  for (const WorkerLaunch& w : plans) {
    EXPECT_EQ(w.env.at(kCurveKeysEnv), file.string()) << w.label;
    for (const std::string& arg : w.argv) {
      for (const std::string& secret : {keys.server.public_key, keys.server.secret_key, keys.client.public_key,
                                        keys.client.secret_key, file.string(), std::string("curve.keys")}) {
        EXPECT_THAT(arg, ::testing::Not(HasSubstr(secret))) << w.label;
      }
    }
  }
  // mpirun forwards the variable by name to its ranks.
  EXPECT_THAT(plans[1].argv, ::testing::Contains(std::string(kCurveKeysEnv)));
  EXPECT_TRUE(plan_worker_launches({{{"actor"}, 1, ""}}, options())[0].env.empty());  // plaintext: nothing to hand
}

TEST(WorkerLaunch, LoopbackHosts) {
  for (const std::string h : {"127.0.0.1", "127.255.0.9", "localhost", "::1", "[::1]"})
    EXPECT_TRUE(is_loopback_host(h)) << h;
  for (const std::string h : {"0.0.0.0", "*", "10.1.2.3", "127.0.0", "127.0.0.1.evil", "127.0.0.256", "n1", ""})
    EXPECT_FALSE(is_loopback_host(h)) << h;
}

TEST(FileStore, DirectoryAndFilesArePrivate) {
  testing::ScratchDir dir;
  FileStore store(dir / "run" / "workers");
  store.set("actor.endpoint", "tcp://127.0.0.1:5555");
  struct stat st {};
  ASSERT_EQ(::stat(store.dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(store.path_of("actor.endpoint").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST(FileStore, SetGetWaitAndDeadlines) {
  testing::ScratchDir dir;
  FileStore store(dir / "rv");
  EXPECT_FALSE(store.get("actor.endpoint"));
  store.set("actor.endpoint", "tcp://n1:5555");
  EXPECT_EQ(store.get("actor.endpoint"), "tcp://n1:5555");
  EXPECT_EQ(testing::read_file(store.path_of("actor.endpoint")), "tcp://n1:5555\n");
  store.remove("actor.endpoint");
  EXPECT_FALSE(store.get("actor.endpoint"));
  EXPECT_THROW(store.path_of("../escape"), ConfigError);

  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    FileStore(dir / "rv").set("critic.endpoint", "ipc:///tmp/c.sock");
  });
  EXPECT_EQ(store.wait("critic.endpoint", 10s), "ipc:///tmp/c.sock");
  late.join();

  EXPECT_THAT([&] { store.wait("reward.endpoint", 100ms, {}, "the endpoint of role reward"); },
              ::testing::ThrowsMessage<TimeoutError>(HasSubstr("the endpoint of role reward did not appear")));
  int checks = 0;
  EXPECT_THROW(store.wait("reward.endpoint", 10s,
                          [&] {
                            if (++checks == 3) throw Error("worker died");
                          }),
               Error);
  EXPECT_EQ(checks, 3);
}

TEST(FileStore, WildcardEndpointsArePublishedWithTheHostName) {
  EXPECT_EQ(reachable_endpoint("tcp://127.0.0.1:40000"), "tcp://127.0.0.1:40000");
  EXPECT_THAT(reachable_endpoint("tcp://0.0.0.0:40000"), ::testing::EndsWith(":40000"));
  EXPECT_THAT(reachable_endpoint("tcp://0.0.0.0:40000"), ::testing::Not(HasSubstr("0.0.0.0")));
  EXPECT_EQ(reachable_endpoint("ipc:///tmp/x.sock"), "ipc:///tmp/x.sock");
}

}  // namespace
}  // namespace troupe::distributed
