// The batch script (cluster/sbatch_script.h): its #SBATCH lines, quoting, and — run by bash with a fake troupe and
// a fake scontrol, no Slurm needed — its signal forwarding, requeue and exit codes.
#include "cluster/sbatch_script.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/subprocess.h"
#include "tests/support/test_support.h"

namespace troupe::cluster {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

BatchJob sample_job() {
  BatchJob job;
  job.job_name = "lr-test";
  job.troupe = "/opt/troupe/bin/troupe";
  job.submit_dir = "/home/me/my project";
  job.slurm_dir = "/home/me/my project/runs/lr-test/slurm";
  job.troupe_args = {"run", "/home/me/my project/cfg.yaml", "task.lr=0.1", "run.name=lr-test"};
  return job;
}

// `bash -n`: the script parses.
core::CommandOutput bash_syntax_check(const std::string& script) {
  core::SubprocessOptions o;
  o.argv = {"/bin/bash", "-n", "-c", script};
  return core::run_captured(o, std::chrono::seconds(30));
}

TEST(SbatchScript, OptionsFromTheClusterSection) {
  ClusterSection c;
  c.partition = "gpu";
  c.account = "proj1";
  c.ntasks = 4;
  c.nodes = 2;
  c.cpus_per_task = 8;
  c.gpus_per_task = 1;
  c.mem = "64G";
  c.time = "04:00:00";
  c.extra_sbatch = {"--exclusive", "#SBATCH --constraint=a100"};
  c.signal_before_s = 300;
  EXPECT_THAT(sbatch_options(c, sample_job()),
              ElementsAre("--job-name=lr-test", "--output=\"/home/me/my project/runs/lr-test/slurm/slurm-%j.out\"",
                          "--open-mode=append", "--partition=gpu", "--account=proj1", "--nodes=2", "--ntasks=4",
                          "--cpus-per-task=8", "--gpus-per-task=1", "--mem=64G", "--time=04:00:00",
                          "--signal=B:USR1@300", "--requeue", "--exclusive", "--constraint=a100"));
}

TEST(SbatchScript, DefaultsAreMinimal) {
  EXPECT_THAT(sbatch_options(ClusterSection{}, sample_job()),
              ElementsAre("--job-name=lr-test", "--output=\"/home/me/my project/runs/lr-test/slurm/slurm-%j.out\"",
                          "--open-mode=append", "--nodes=1", "--ntasks=1", "--signal=B:USR1@120", "--requeue"));
}

TEST(SbatchScript, ScriptQuotesPathsAndRunsTroupe) {
  ClusterSection c;
  const std::string s = sbatch_script(c, sample_job());
  EXPECT_EQ(s.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_THAT(s, HasSubstr("\n#SBATCH --signal=B:USR1@120\n#SBATCH --requeue\n"));
  EXPECT_THAT(s, HasSubstr("\ncd '/home/me/my project' || exit 1\n"));
  EXPECT_THAT(s, HasSubstr("\nargs=(run '/home/me/my project/cfg.yaml' task.lr=0.1 run.name=lr-test)\n"));
  EXPECT_THAT(s, HasSubstr("\n/opt/troupe/bin/troupe \"${args[@]}\" &\n"));
  EXPECT_THAT(s, HasSubstr("scontrol requeue \"$SLURM_JOB_ID\""));
  EXPECT_THAT(s, HasSubstr("OMPI_ALLOW_RUN_AS_ROOT=1"));
  EXPECT_THAT(s, Not(HasSubstr("\nsrun ")));
  EXPECT_THAT(s, Not(HasSubstr("--array")));
  const auto check = bash_syntax_check(s);
  EXPECT_EQ(check.status, 0) << check.err;
}

TEST(SbatchScript, ArraysMultiTaskAndNoRequeue) {
  ClusterSection c;
  c.ntasks = 2;
  c.requeue = false;
  BatchJob job = sample_job();
  job.array_size = 3;
  job.slurm_dir = "/r/100%/slurm";
  const std::string s = sbatch_script(c, job);
  EXPECT_THAT(s, HasSubstr("\n#SBATCH --output=/r/100%%/slurm/slurm-%A_%a.out\n"));
  EXPECT_THAT(s, HasSubstr("\n#SBATCH --no-requeue\n"));
  EXPECT_THAT(s, HasSubstr("\n#SBATCH --array=0-2\n"));
  EXPECT_THAT(s, HasSubstr("\nsrun --mpi=pmix /opt/troupe/bin/troupe \"${args[@]}\" &\n"));
  EXPECT_THAT(s, HasSubstr("sweep.tsv"));
  EXPECT_THAT(s, Not(HasSubstr("scontrol requeue")));
  const auto check = bash_syntax_check(s);
  EXPECT_EQ(check.status, 0) << check.err;
  job.slurm_dir = "/r/a\"b";
  EXPECT_THROW(sbatch_script(c, job), ConfigError);
}

TEST(SbatchScript, ShellQuoting) {
  EXPECT_EQ(core::shell_quote("run.name=x-1"), "run.name=x-1");
  EXPECT_EQ(core::shell_quote("a b"), "'a b'");
  EXPECT_EQ(core::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(core::shell_quote(""), "''");
  EXPECT_EQ(core::shell_quote("$HOME"), "'$HOME'");
}

// Runs the generated script with bash outside Slurm: a fake troupe that records its arguments and exits like
// troupe does on signals, and a fake scontrol that records what it was asked.
class ScriptBehaviour : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "slurm");
    write_executable(dir_ / "bin" / "troupe",
                     "#!/bin/bash\nprintf '%s\\n' \"$@\" > \"$OUT/args\"\n"
                     "trap 'echo USR1 >> \"$OUT/signals\"; exit 138' USR1\n"
                     "trap 'echo TERM >> \"$OUT/signals\"; exit 143' TERM\n"
                     "if [ -n \"${FAKE_EXIT:-}\" ]; then exit \"$FAKE_EXIT\"; fi\n"
                     "touch \"$OUT/ready\"\nwhile :; do sleep 0.02; done\n");
    write_executable(dir_ / "bin" / "scontrol", "#!/bin/bash\necho \"$@\" >> \"$OUT/scontrol\"\n");
  }
  void write_executable(const fs::path& p, const std::string& text) {
    testing::write_file(p, text);
    ::chmod(p.c_str(), 0755);
  }
  BatchJob job() {
    BatchJob j;
    j.job_name = "t";
    j.troupe = dir_ / "bin" / "troupe";
    j.submit_dir = dir_.path();
    j.slurm_dir = dir_ / "slurm";
    j.troupe_args = {"run", "cfg.yaml", "run.name=t"};
    return j;
  }
  // Starts the script; when `signal` is set, sends it once the fake troupe is running. Returns the exit status.
  int run(const ClusterSection& c, const BatchJob& j, int signal, std::vector<std::string> env = {}) {
    testing::write_file(dir_ / "job.sbatch", sbatch_script(c, j));
    env.push_back("OUT=" + dir_.path().string());
    env.push_back("PATH=" + (dir_ / "bin").string() + ":" + std::getenv("PATH"));
    env.push_back("SLURM_JOB_ID=42");
    testing::ChildProcess script({"/bin/bash", (dir_ / "job.sbatch").string()}, dir_ / "out.txt", env);
    if (signal) {
      EXPECT_TRUE(testing::wait_until([&] { return fs::exists(dir_ / "ready"); }, std::chrono::seconds(20)));
      script.kill(signal);
    }
    const int code = script.wait(std::chrono::seconds(30));
    output_ = script.output();
    return code;
  }
  std::string read(const std::string& name) {
    return fs::exists(dir_ / name) ? testing::read_file(dir_ / name) : std::string();
  }
  testing::ScratchDir dir_{"troupe-sbatch"};
  std::string output_;
};

TEST_F(ScriptBehaviour, Usr1IsForwardedAndTheJobRequeued) {
  EXPECT_EQ(run(ClusterSection{}, job(), SIGUSR1), 0) << output_;
  EXPECT_EQ(read("signals"), "USR1\n");
  EXPECT_EQ(read("scontrol"), "requeue 42\n");
  EXPECT_EQ(read("args"), "run\ncfg.yaml\nrun.name=t\n");
  const std::string events = read("slurm/events");
  EXPECT_THAT(events, HasSubstr("job 42 restart 0: starting on "));
  EXPECT_THAT(events, HasSubstr("received SIGUSR1, forwarding it to troupe"));
  EXPECT_THAT(events, HasSubstr("troupe checkpointed on SIGUSR1 (exit 138); requeueing job 42"));
}

TEST_F(ScriptBehaviour, NoRequeueWhenDisabled) {
  ClusterSection c;
  c.requeue = false;
  EXPECT_EQ(run(c, job(), SIGUSR1), 138) << output_;
  EXPECT_EQ(read("scontrol"), "");
  EXPECT_THAT(read("slurm/events"), HasSubstr("cluster.requeue is false"));
}

TEST_F(ScriptBehaviour, TermStopsWithoutRequeue) {
  EXPECT_EQ(run(ClusterSection{}, job(), SIGTERM), 143) << output_;
  EXPECT_EQ(read("signals"), "TERM\n");
  EXPECT_EQ(read("scontrol"), "");
  EXPECT_THAT(read("slurm/events"), HasSubstr("troupe exited with status 143"));
}

TEST_F(ScriptBehaviour, ExitCodesPassThrough) {
  EXPECT_EQ(run(ClusterSection{}, job(), 0, {"FAKE_EXIT=0"}), 0) << output_;
  EXPECT_THAT(read("slurm/events"), HasSubstr("troupe finished"));
  EXPECT_EQ(run(ClusterSection{}, job(), 0, {"FAKE_EXIT=2"}), 2) << output_;
  EXPECT_THAT(read("slurm/events"), HasSubstr("troupe exited with status 2"));
}

TEST_F(ScriptBehaviour, ArrayTaskAppendsItsRow) {
  BatchJob j = job();
  j.array_size = 2;
  testing::write_file(dir_ / "slurm" / "sweep.tsv",
                      "# index\trun\toverrides...\n0\truns/s/0\tseed=1\trun.name=0\n"
                      "1\truns/s/1\tseed=2\tnote=\"a b\"\trun.name=1\n");
  EXPECT_EQ(run(ClusterSection{}, j, 0, {"FAKE_EXIT=0", "SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_JOB_ID=41"}), 0)
      << output_;
  EXPECT_EQ(read("args"), "run\ncfg.yaml\nrun.name=t\nseed=2\nnote=\"a b\"\nrun.name=1\n");
  EXPECT_THAT(read("slurm/events"), HasSubstr("job 42 (array 41_1) restart 0"));
  EXPECT_EQ(run(ClusterSection{}, j, 0, {"FAKE_EXIT=0", "SLURM_ARRAY_TASK_ID=7"}), 2) << output_;
  EXPECT_THAT(read("slurm/events"), HasSubstr("no row 7"));
}

}  // namespace
}  // namespace troupe::cluster
