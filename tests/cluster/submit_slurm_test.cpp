// `troupe submit|status|cancel` against a real Slurm 22.05: the fixture starts munged, slurmctld and slurmd from a
// scratch directory (free ports, this host's name, SLURM_CONF exported to every child), and stops them — and any
// job step left behind — by PID. Installs nothing: without the binaries the tests skip and say what to install.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "core/errors.h"
#include "core/run_log.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "tests/support/test_support.h"

namespace troupe::cluster {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Polls `condition` every `interval` until it holds or `timeout` passes (Slurm's commands are too heavy to run
// every few milliseconds).
bool poll_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = 200ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string tail_of(const fs::path& file, size_t chars = 3000) {
  if (!fs::exists(file)) return "(no " + file.string() + ")\n";
  std::string text = testing::read_file(file);
  return "--- " + file.string() + "\n" + (text.size() > chars ? text.substr(text.size() - chars) : text) + "\n";
}

// A one-node Slurm cluster of our own: munged, slurmctld and slurmd as children of the test process.
class SlurmCluster {
 public:
  static constexpr const char* kPackages = "slurm-wlm slurmctld slurmd slurm-client munge libpmix2";

  // The missing programs ("" when all are there).
  static std::string missing_programs() {
    std::string missing;
    for (const char* p : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"})
      if (!core::find_on_path(p) && !core::find_on_path(std::string("/usr/sbin/") + p)) missing += std::string(" ") + p;
    return missing;
  }

  static fs::path program(const std::string& name) {
    if (auto p = core::find_on_path(name)) return *p;
    return "/usr/sbin/" + name;
  }

  explicit SlurmCluster(const fs::path& dir) : dir_(dir) {}
  ~SlurmCluster() { stop(); }

  const fs::path& conf() const { return conf_; }

  // Starts the daemons and waits until the node is idle; throws with the daemon logs when it does not get there.
  void start() {
    make_directories();
    write_munge_key();
    const fs::path munge = dir_ / "munge";
    munged_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{program("munged").string(), "-F", "--key-file=" + (munge / "etc/munge.key").string(),
                                 "--socket=" + socket_.string(), "--log-file=" + (munge / "munged.log").string(),
                                 "--pid-file=" + (munge / "run/munged.pid").string(),
                                 "--seed-file=" + (munge / "munged.seed").string()},
        dir_ / "munged.out");
    if (!poll_until([&] { return fs::exists(socket_); }, 10s, 20ms)) throw IoError("munged did not start\n" + logs());
    write_conf();
    ::setenv("SLURM_CONF", conf_.c_str(), 1);  // for every command the tests run, and through sbatch for the jobs
    const std::vector<std::string> env = {"SLURM_CONF=" + conf_.string()};
    slurmctld_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{program("slurmctld").string(), "-D", "-f", conf_.string()}, dir_ / "slurmctld.out",
        env);
    slurmd_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{program("slurmd").string(), "-D", "-f", conf_.string()}, dir_ / "slurmd.out", env);
    const bool idle = poll_until(
        [&] {
          const auto r = testing::run_process({program("sinfo").string(), "-h", "-o", "%t"}, 10s);
          return r.exit_code == 0 && r.output.find("idle") != std::string::npos;
        },
        30s);
    if (!idle) throw IoError("the Slurm node did not become idle within 30 s\n" + logs());
  }

  // Cancels every job, stops the daemons (SIGTERM, then SIGKILL), and kills whatever still carries our SLURM_CONF
  // in its environment: job steps (slurmstepd), batch scripts and troupe processes.
  void stop() {
    if (!slurmctld_ && !munged_) return;
    if (slurmctld_) {
      testing::run_process({program("scancel").string(), "--user=" + std::to_string(::getuid())}, 10s);
      poll_until([] { return queue().empty(); }, 15s);
    }
    for (auto* d : {&slurmd_, &slurmctld_}) terminate(*d);
    kill_leftovers();
    terminate(munged_);
    ::unsetenv("SLURM_CONF");
  }

  std::string logs() const {
    return tail_of(dir_ / "slurmctld.log") + tail_of(dir_ / "slurmd.log") + tail_of(dir_ / "munge" / "munged.log") +
           tail_of(dir_ / "slurmctld.out") + tail_of(dir_ / "slurmd.out") + tail_of(dir_ / "munged.out");
  }

  // squeue's lines "id|state" for every job and array task Slurm shows as active.
  static std::string queue() {
    return testing::run_process({program("squeue").string(), "-h", "-r", "-o", "%i|%T"}, 10s).output;
  }

 private:
  void make_directories() {
    for (const char* d : {"munge/etc", "munge/run", "state", "spool"}) fs::create_directories(dir_ / d);
    ::chmod(dir_.c_str(), 0755);
    ::chmod((dir_ / "munge").c_str(), 0755);
    ::chmod((dir_ / "munge/run").c_str(), 0755);
    ::chmod((dir_ / "munge/etc").c_str(), 0700);
    socket_ = dir_ / "munge/run/munge.socket";
  }

  // A fresh random key: nothing depends on /etc/munge.
  void write_munge_key() {
    std::random_device rd;
    std::string key(1024, '\0');
    for (auto& c : key) c = static_cast<char>(rd() & 0xff);
    const fs::path path = dir_ / "munge/etc/munge.key";
    testing::write_file(path, key);
    ::chmod(path.c_str(), 0600);
  }

  void write_conf() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string h = host;
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    const std::string d = dir_.string();
    conf_ = dir_ / "slurm.conf";
    std::string c;
    c += "ClusterName=troupetest\nSlurmctldHost=" + h + "(127.0.0.1)\n";
    c += "SlurmUser=root\nSlurmdUser=root\n";
    c += "SlurmctldPort=" + std::to_string(free_port()) + "\nSlurmdPort=" + std::to_string(free_port()) + "\n";
    // cred_expire is also how long a requeued job waits before it may start again (default 120 s).
    c += "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket=" + socket_.string() + ",cred_expire=5\n";
    c += "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n";
    c += "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n";
    c += "SchedulerType=sched/backfill\nSchedulerParameters=sched_interval=1,bf_interval=1\n";
    c += "StateSaveLocation=" + d + "/state\nSlurmdSpoolDir=" + d + "/spool\n";
    c += "SlurmctldPidFile=" + d + "/slurmctld.pid\nSlurmdPidFile=" + d + "/slurmd.pid\n";
    c += "SlurmctldLogFile=" + d + "/slurmctld.log\nSlurmdLogFile=" + d + "/slurmd.log\n";
    c += "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n";
    c += "MpiDefault=none\nMailProg=/bin/true\nReturnToService=2\nKillWait=5\nInactiveLimit=0\n";
    c += "NodeName=" + h + " NodeAddr=127.0.0.1 CPUs=" + std::to_string(cpus) + " RealMemory=1000\n";
    c += "PartitionName=debug Nodes=" + h + " Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4\n";
    testing::write_file(conf_, c);
  }

  static void terminate(std::unique_ptr<testing::ChildProcess>& child) {
    if (!child) return;
    child->kill(SIGTERM);
    try {
      child->wait(15s);
    } catch (const TimeoutError&) {
      // wait() killed it with SIGKILL.
    }
    child.reset();
  }

  // Processes (other than us) whose environment holds SLURM_CONF=<our conf>.
  void kill_leftovers() const {
    const std::string marker = "SLURM_CONF=" + conf_.string();
    for (int round = 0; round < 3; ++round) {
      int found = 0;
      for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const int pid = std::stoi(name);
        if (pid == ::getpid()) continue;
        std::ifstream in(entry.path() / "environ", std::ios::binary);
        std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        bool ours = false;
        for (size_t pos = 0; pos < env.size();) {
          const size_t end = env.find('\0', pos);
          if (env.compare(pos, (end == std::string::npos ? env.size() : end) - pos, marker) == 0) ours = true;
          if (end == std::string::npos) break;
          pos = end + 1;
        }
        if (ours && ::kill(pid, SIGKILL) == 0) ++found;
      }
      if (found == 0) return;
      std::this_thread::sleep_for(100ms);
    }
  }

  fs::path dir_;
  fs::path conf_;
  fs::path socket_;
  std::unique_ptr<testing::ChildProcess> munged_, slurmctld_, slurmd_;
};

class SlurmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    missing_ = SlurmCluster::missing_programs();
    if (!missing_.empty()) return;
    scratch_ = new testing::ScratchDir("troupe-slurm");
    cluster_ = new SlurmCluster(scratch_->path() / "slurm");
    try {
      cluster_->start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete scratch_;
    scratch_ = nullptr;
  }
  void SetUp() override {
    if (!missing_.empty())
      GTEST_SKIP() << "Slurm is not installed (missing:" << missing_ << "); apt-get install " << SlurmCluster::kPackages
                   << " (scripts/install-deps.sh, which make test runs, installs them)";
    ASSERT_TRUE(start_error_.empty()) << start_error_;
  }

  static fs::path runs() { return scratch_->path() / "runs"; }
  static std::string quickstart() { return (testing::source_dir() / "experiments/quickstart/config.yaml").string(); }

  static testing::ProcessResult troupe(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), testing::cli_path());
    return testing::run_process(args, timeout);
  }

  // The job id in "submitted job 12 ..." / "submitted job array 12 ...".
  static std::string submitted_id(const std::string& output) {
    std::smatch m;
    if (std::regex_search(output, m, std::regex(R"(submitted job (?:array )?(\d+))"))) return m[1];
    return "";
  }

  // Waits until Slurm shows no active job or array task of `id`; false after `timeout`.
  static bool wait_for_job(const std::string& id, std::chrono::seconds timeout) {
    return poll_until(
        [&] {
          const std::string q = SlurmCluster::queue();
          return q.find(id + "|") == std::string::npos && q.find(id + "_") == std::string::npos;
        },
        timeout, 250ms);
  }

  static std::string slurm_outputs(const fs::path& slurm_dir) {
    std::string s;
    if (fs::is_directory(slurm_dir))
      for (const auto& e : fs::directory_iterator(slurm_dir)) s += tail_of(e.path());
    return s;
  }

  static std::string job_diagnostics(const fs::path& run) {
    return slurm_outputs(run / "slurm") + tail_of(run / "troupe.log") + cluster_->logs();
  }

  static int64_t last_step(const fs::path& run, const std::string& metric = "train/loss") {
    core::RunLogReader log(run / "log.h5");
    const auto m = log.metric(metric);
    return m.steps.empty() ? -1 : m.steps.back();
  }

  static inline std::string missing_;
  static inline std::string start_error_;
  static inline testing::ScratchDir* scratch_ = nullptr;
  static inline SlurmCluster* cluster_ = nullptr;
};

// (a) A tiny quickstart job runs to the end under Slurm.
TEST_F(SlurmTest, SubmittedRunFinishes) {
  const fs::path run = runs() / "tiny";
  const auto submit = troupe({"submit", quickstart(), "run.dir=" + runs().string(), "run.name=tiny", "task.steps=200",
                              "runtime.threads=1", "checkpoint.every=100"});
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  const std::string id = submitted_id(submit.output);
  ASSERT_FALSE(id.empty()) << submit.output;
  EXPECT_THAT(submit.output, HasSubstr("troupe status " + run.string()));
  EXPECT_EQ(testing::read_file(run / "slurm" / "job_id"), id + "\n");
  EXPECT_TRUE(fs::exists(run / "slurm" / "job.sbatch"));

  ASSERT_TRUE(wait_for_job(id, 120s)) << "job " << id << " still queued\n" << job_diagnostics(run);
  EXPECT_EQ(testing::read_file(run / "status"), "finished\n") << job_diagnostics(run);
  EXPECT_EQ(last_step(run), 200);
  core::RunLogReader log(run / "log.h5");
  EXPECT_EQ(log.attribute("status").value_or(""), "finished");
  EXPECT_TRUE(fs::exists(run / "slurm" / ("slurm-" + id + ".out")));
  EXPECT_THAT(testing::read_file(run / "slurm" / "events"), HasSubstr("troupe finished"));

  const auto status = troupe({"status", run.string()});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr(" " + id + ": COMPLETED"));
  EXPECT_THAT(status.output, HasSubstr("step 200 at "));
  const auto cancel = troupe({"cancel", run.string()});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_THAT(cancel.output, HasSubstr("no job of"));
}

// (b) SIGUSR1 (what Slurm sends before the time limit or a preemption) makes the job checkpoint, requeue itself
// and resume; the result is bit-identical to an uninterrupted local run.
TEST_F(SlurmTest, PreemptedRunIsRequeuedAndResumes) {
  const std::vector<std::string> common = {"run.dir=" + runs().string(), "task.steps=20000", "runtime.threads=1",
                                           "checkpoint.every=5000", "task.log_every=5000"};
  std::vector<std::string> args = {"submit", quickstart(), "run.name=preempt"};
  args.insert(args.end(), common.begin(), common.end());
  const fs::path run = runs() / "preempt";
  const auto submit = troupe(args);
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  const std::string id = submitted_id(submit.output);

  // Mid-run: some step logged, the run not finished.
  ASSERT_TRUE(poll_until(
      [&] {
        try {
          return fs::exists(run / "log.h5") && last_step(run) >= 1;
        } catch (const Error&) {
          return false;  // a read racing the writer's flush; try again
        }
      },
      60s, 50ms))
      << job_diagnostics(run);
  const auto signal =
      testing::run_process({SlurmCluster::program("scancel").string(), "--signal=USR1", "--batch", id}, 20s);
  ASSERT_EQ(signal.exit_code, 0) << signal.output;

  ASSERT_TRUE(poll_until(
      [&] { return testing::read_file(run / "slurm" / "events").find("requeueing job " + id) != std::string::npos; },
      60s))
      << job_diagnostics(run);
  // The requeued job (same id, restart 1) must start again and finish.
  ASSERT_TRUE(poll_until(
      [&] { return fs::exists(run / "status") && testing::read_file(run / "status") == "finished\n"; }, 120s))
      << job_diagnostics(run);
  ASSERT_TRUE(wait_for_job(id, 60s)) << job_diagnostics(run);

  const std::string events = testing::read_file(run / "slurm" / "events");
  EXPECT_THAT(events, HasSubstr("received SIGUSR1, forwarding it to troupe"));
  EXPECT_THAT(events, HasSubstr("job " + id + " restart 1: starting on"));
  EXPECT_THAT(events, HasSubstr("job " + id + " restart 1: troupe finished"));
  const auto show = testing::run_process({SlurmCluster::program("scontrol").string(), "show", "job", id}, 10s);
  EXPECT_THAT(show.output, HasSubstr("Restarts=1"));

  core::RunLogReader log(run / "log.h5");
  int64_t resumed_from = -1;
  for (const auto& e : log.events())
    if (e.kind == "resume") resumed_from = e.step;
  EXPECT_GT(resumed_from, 0) << "no resume from a checkpoint in the log";
  EXPECT_LT(resumed_from, 20000);
  EXPECT_EQ(last_step(run), 20000);

  // The same run without Slurm and without the interruption.
  std::vector<std::string> local = {"run", quickstart(), "run.name=preempt-ref"};
  local.insert(local.end(), common.begin(), common.end());
  const auto ref = troupe(local);
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  core::RunLogReader ref_log(runs() / "preempt-ref" / "log.h5");
  EXPECT_EQ(log.metric("train/loss").values.back(), ref_log.metric("train/loss").values.back());
  EXPECT_EQ(log.metric("eval/mse").values.back(), ref_log.metric("eval/mse").values.back());

  const auto status = troupe({"status", run.string()});
  EXPECT_THAT(status.output, HasSubstr("requeues  1"));
  EXPECT_THAT(status.output, HasSubstr("resumed 1 time"));
}

// (c) A two-element sweep is one job array with one run directory per element.
TEST_F(SlurmTest, SweepRunsAsAJobArray) {
  const fs::path config = scratch_->path() / "sweep.yaml";
  testing::write_file(config, "base: " + quickstart() + "\nrun:\n  name: sw\n  dir: " + runs().string() +
                                  "\nruntime: {threads: 1}\ntask: {steps: 60}\nsweep:\n  grid:\n    seed: [1, 2]\n");
  const auto submit = troupe({"submit", config.string()});
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  EXPECT_THAT(submit.output, HasSubstr("(2 runs)"));
  const std::string id = submitted_id(submit.output);
  const fs::path root = runs() / "sw";
  ASSERT_TRUE(wait_for_job(id, 120s)) << job_diagnostics(root);
  for (const char* label : {"0_seed-1", "1_seed-2"}) {
    EXPECT_EQ(testing::read_file(root / label / "status"), "finished\n") << label << "\n" << job_diagnostics(root);
    EXPECT_EQ(last_step(root / label), 60) << label;
  }
  EXPECT_TRUE(fs::exists(root / "slurm" / ("slurm-" + id + "_0.out")));
  EXPECT_TRUE(fs::exists(root / "slurm" / ("slurm-" + id + "_1.out")));
  core::RunLogReader a(root / "0_seed-1" / "log.h5"), b(root / "1_seed-2" / "log.h5");
  EXPECT_NE(a.metric("train/loss").values.back(), b.metric("train/loss").values.back());  // different seeds

  const auto status = troupe({"status", root.string()});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("sweep " + root.string() + ": 2 runs, job array " + id));
  EXPECT_THAT(status.output, HasSubstr("1_seed-2"));
  EXPECT_THAT(status.output, HasSubstr("step 60 at"));
}

// PPO under Slurm: with placement.launcher auto, each role group is a job step of its own (srun --mpi=pmix), the
// workers bind every interface and publish this host's name, and the run finishes like a local one.
TEST_F(SlurmTest, PpoRolesRunAsJobSteps) {
  const fs::path run = runs() / "ppo";
  const auto submit =
      troupe({"submit", (testing::source_dir() / "experiments/quickstart/ppo.yaml").string(),
              "run.dir=" + runs().string(), "run.name=ppo", "ppo.iterations=6", "checkpoint.every=3",
              "placement.transport=tcp", "placement.bind_host=0.0.0.0", "placement.colocate=['reward,reference']"});
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  const std::string id = submitted_id(submit.output);
  ASSERT_FALSE(id.empty()) << submit.output;
  ASSERT_TRUE(wait_for_job(id, 120s)) << "job " << id << " still queued\n" << job_diagnostics(run);
  EXPECT_EQ(core::RunLogReader(run / "log.h5").attribute("status").value_or(""), "finished") << job_diagnostics(run);
  EXPECT_EQ(last_step(run, "reward/mean"), 6);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  for (const char* group : {"actor", "critic", "reward+reference"}) {
    const std::string log = testing::read_file(run / "workers" / (std::string(group) + ".log"));
    EXPECT_THAT(log, ::testing::ContainsRegex("in slurm job " + id + " step [0-9]+")) << group << "\n" << log;
  }
  EXPECT_THAT(testing::read_file(run / "workers" / "actor.endpoint"), HasSubstr("tcp://" + std::string(host) + ":"));
}

// (d) --dry-run prints the script and leaves Slurm and the disk alone.
TEST_F(SlurmTest, DryRunSubmitsNothing) {
  const fs::path run = runs() / "dry";
  const auto dry = troupe({"submit", quickstart(), "--dry-run", "run.dir=" + runs().string(), "run.name=dry",
                           "cluster.time=00:10:00", "cluster.cpus_per_task=1"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  for (const std::string& line : std::vector<std::string>{
           "#SBATCH --job-name=dry\n", "#SBATCH --output=" + (run / "slurm").string() + "/slurm-%j.out\n",
           "#SBATCH --cpus-per-task=1\n", "#SBATCH --time=00:10:00\n", "#SBATCH --signal=B:USR1@120\n",
           "#SBATCH --requeue\n", "run.resume=auto run.overwrite=false run.name=dry)\n", "# dry run: nothing"})
    EXPECT_THAT(dry.output, HasSubstr(line));
  EXPECT_FALSE(fs::exists(run));
  EXPECT_EQ(SlurmCluster::queue(), "");

  const fs::path config = scratch_->path() / "dry-sweep.yaml";
  testing::write_file(config, "base: " + quickstart() + "\nrun: {name: dry-sweep, dir: " + runs().string() +
                                  "}\nsweep:\n  list:\n    - {task.lr: 0.01}\n    - {task.lr: 0.02}\n");
  const auto sweep = troupe({"submit", config.string(), "--dry-run"});
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  EXPECT_THAT(sweep.output, HasSubstr("#SBATCH --array=0-1\n"));
  EXPECT_THAT(sweep.output, HasSubstr("# 1\t" + (runs() / "dry-sweep" / "1_lr-0.02").string() + "\ttask.lr=0.02\t"));
  EXPECT_FALSE(fs::exists(runs() / "dry-sweep"));
  EXPECT_EQ(SlurmCluster::queue(), "");
}

}  // namespace
}  // namespace troupe::cluster
