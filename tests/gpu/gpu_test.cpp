// Tests that need a CUDA GPU (ctest label `gpu`). Without one every test here reports as skipped with the reason,
// never as passed; bench/gpu_check.sh runs them on a GPU machine. Each compares the CUDA path with the CPU path the
// rest of the suite checks: model forward/backward, KV-cache generation, checkpoints across devices, NCCL.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <csignal>
#include <random>

#include "core/device.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "distributed/message.h"
#include "distributed/nccl_communicator.h"
#include "models/generation.h"
#include "models/gpt_io.h"
#include "tests/support/pattern_task.h"
#include "tests/support/test_support.h"
#include "tests/support/token_streams.h"
#include "tokenizers/token_file.h"

namespace troupe {
namespace {

using testing::ScratchDir;

#define TROUPE_REQUIRE_GPU()                                                                        \
  if (torch::cuda::device_count() == 0)                                                             \
  GTEST_SKIP() << "no CUDA GPU visible (torch::cuda::device_count() == 0); run bench/gpu_check.sh " \
                  "on a GPU machine"

models::Gpt random_model(uint64_t seed) {
  const models::GptConfig c{.n_layer = 3, .n_head = 4, .n_embd = 64, .block_size = 64, .vocab_size = 211};
  torch::manual_seed(seed);
  models::Gpt model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.1);
  return model;
}

// A CUDA copy of `model` with the same parameters and buffers.
models::Gpt to_cuda(models::Gpt& model, uint64_t seed) {
  models::Gpt copy = random_model(seed);
  copy->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  auto src = model->named_parameters();
  for (auto& [name, p] : copy->named_parameters().pairs()) p.copy_(src[name]);
  return copy;
}

TEST(Gpu, DeviceAutoPicksTheLocalRanksGpu) {
  TROUPE_REQUIRE_GPU();
  const int n = static_cast<int>(torch::cuda::device_count());
  EXPECT_EQ(core::resolve_device("auto", 0), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(core::resolve_device("auto", n), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(core::resolve_device("cuda:0", 3), torch::Device(torch::kCUDA, 0));
  EXPECT_THROW(core::resolve_device("cuda:" + std::to_string(n), 0), ConfigError);
}

TEST(Gpu, ForwardAndBackwardMatchTheCpu) {
  TROUPE_REQUIRE_GPU();
  at::globalContext().setAllowTF32CuBLAS(false);  // compare fp32 with fp32
  models::Gpt cpu = random_model(1);
  models::Gpt gpu = to_cuda(cpu, 1);
  const torch::Tensor ids = torch::randint(0, 211, {3, 40}, torch::kLong);
  const torch::Tensor targets = torch::randint(0, 211, {3, 40}, torch::kLong);
  auto loss_of = [&](models::Gpt& m, torch::Device d) {
    const torch::Tensor logits = m->forward(ids.to(d));
    return torch::nn::functional::cross_entropy(logits.view({-1, 211}), targets.to(d).view({-1}));
  };
  const torch::Tensor l_cpu = loss_of(cpu, torch::kCPU), l_gpu = loss_of(gpu, torch::kCUDA);
  l_cpu.backward();
  l_gpu.backward();
  EXPECT_NEAR(l_cpu.item<double>(), l_gpu.item<double>(), 1e-4);
  auto gpu_params = gpu->named_parameters();
  for (auto& [name, p] : cpu->named_parameters().pairs()) {
    SCOPED_TRACE(name);
    const double diff = (p.grad() - gpu_params[name].grad().cpu()).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4);
  }
}

TEST(Gpu, KvCacheGenerationEqualsNoCacheAndTheCpu) {
  TROUPE_REQUIRE_GPU();
  at::globalContext().setAllowTF32CuBLAS(false);
  models::Gpt cpu = random_model(2);
  models::Gpt gpu = to_cuda(cpu, 2);
  models::GenerationConfig g;
  g.max_new_tokens = 20;
  const std::vector<std::vector<int64_t>> prompts = {{5, 6, 7}, {9}, {1, 2, 3, 4, 5}};
  const auto cached = models::generate(gpu, prompts, g);
  g.use_cache = false;
  const auto uncached = models::generate(gpu, prompts, g);
  EXPECT_EQ(cached.tokens, uncached.tokens);
  EXPECT_EQ(cached.tokens, models::generate(cpu, prompts, g).tokens);
}

TEST(Gpu, ModelSavedFromCudaLoadsOnTheCpu) {
  TROUPE_REQUIRE_GPU();
  ScratchDir dir;
  models::Gpt cpu = random_model(3);
  models::Gpt gpu = to_cuda(cpu, 3);
  models::save_hf_gpt2(dir / "hf", gpu);
  models::Gpt loaded = models::load_hf_gpt2(dir / "hf");
  cpu->eval();
  loaded->eval();
  const torch::Tensor ids = torch::randint(0, 211, {2, 16}, torch::kLong);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->forward(ids), cpu->forward(ids)));
}

TEST(Gpu, NcclOneRankCollectivesAreIdentities) {
  TROUPE_REQUIRE_GPU();
  distributed::SingleProcessCommunicator bootstrap;
  auto nccl = distributed::NcclCommunicator::create(bootstrap, 0, std::chrono::seconds(60));
  ASSERT_EQ(nccl->size(), 1);
  torch::Tensor t = torch::arange(10, torch::TensorOptions(torch::kFloat32).device(torch::kCUDA));
  nccl->allreduce_sum(t);
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(10, torch::kFloat32)));
  torch::Tensor gathered = torch::empty({10}, t.options());
  nccl->all_gather(t, gathered);
  EXPECT_TRUE(torch::equal(gathered, t));
  EXPECT_TRUE(nccl->any(true));
  EXPECT_FALSE(nccl->any(false));
}

TEST(Gpu, NcclRefusesATensorOnTheCpu) {
  TROUPE_REQUIRE_GPU();
  distributed::SingleProcessCommunicator bootstrap;
  auto nccl = distributed::NcclCommunicator::create(bootstrap, 0, std::chrono::seconds(60));
  torch::Tensor t = torch::ones({4});
  EXPECT_THROW(nccl->allreduce_sum(t), ConfigError);
}

#define TROUPE_REQUIRE_GPUS(n)                                                          \
  if (torch::cuda::device_count() < (n))                                                \
  GTEST_SKIP() << "needs " << (n) << " CUDA GPUs, sees " << torch::cuda::device_count() \
               << "; run bench/gpu_check.sh on a machine with " << (n) << " GPUs"

TEST(Gpu, CudaTensorsTravelThroughHostMemoryAndLandOnTheReceiversDevice) {
  TROUPE_REQUIRE_GPU();
  distributed::Message m(distributed::MessageType::kValues);
  const torch::Tensor x = torch::randn({3, 5}, torch::TensorOptions().device(torch::kCUDA));
  m.tensors.emplace_back("x", x);
  m.tensors.emplace_back("y", x.t());  // not contiguous
  const distributed::Message got = distributed::decode(distributed::encode(m));
  EXPECT_TRUE(got.tensor("x").is_cpu());
  EXPECT_TRUE(torch::equal(got.tensor("x"), x.cpu()));
  EXPECT_TRUE(torch::equal(got.tensor("y"), x.t().cpu()));
  const distributed::Message there = distributed::to_device(got, torch::Device(torch::kCUDA, 0));
  EXPECT_TRUE(there.tensor("x").is_cuda());
  EXPECT_TRUE(torch::equal(there.tensor("x"), x));
}

// `troupe train pretrain` on a learnable token stream, on GPUs.
class GpuTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_learnable_tokens(dir_ / "train.bin", 20000, 1);
    testing::write_learnable_tokens(dir_ / "val.bin", 3000, 2);
    testing::write_file(dir_ / "pre.yaml",
                        "kind: pretrain\nseed: 5\nrun: {dir: " + dir_.path().string() +
                            "/runs}\n"
                            "runtime: {threads: 1, device: cuda, deterministic: true}\n"
                            "checkpoint: {every: 5, keep_last: 0}\n"
                            "model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 97, dropout: 0.0}\n"
                            "optim: {lr: 1.0e-2, min_lr: 1.0e-3, warmup_steps: 5}\n"
                            "train: {steps: 20, batch_size: 8, grad_accum: 2, eval_every: 10, eval_batches: 0, "
                            "log_every: 1}\n"
                            "data: {train: " +
                            (dir_ / "train.bin").string() + ", val: " + (dir_ / "val.bin").string() + "}\n");
  }
  std::vector<std::string> args(const std::string& name, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {testing::cli_path(), "train", "pretrain", (dir_ / "pre.yaml").string(),
                                  "run.name=" + name};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::filesystem::path run(const std::string& name) const { return dir_ / "runs" / name; }
  ScratchDir dir_;
};

// The same run on the CPU and on a GPU gives the same losses up to float rounding (TF32 is off by default).
TEST_F(GpuTrain, CudaTrainingMatchesTheCpu) {
  TROUPE_REQUIRE_GPU();
  auto gpu = testing::run_process(args("gpu"), std::chrono::seconds(300));
  ASSERT_EQ(gpu.exit_code, 0) << gpu.output;
  EXPECT_NE(gpu.output.find("cuda:0"), std::string::npos) << gpu.output;
  auto cpu = testing::run_process(args("cpu", {"runtime.device=cpu"}), std::chrono::seconds(300));
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  core::RunLogReader a(run("gpu") / "log.h5"), b(run("cpu") / "log.h5");
  const auto la = a.metric("train/loss"), lb = b.metric("train/loss");
  ASSERT_EQ(la.steps, lb.steps);
  for (size_t i = 0; i < la.values.size(); ++i) EXPECT_NEAR(la.values[i], lb.values[i], 2e-3) << la.steps[i];
}

// Interrupted on the GPU (SIGTERM checkpoints), resumed on the CPU: the optimizer state and the weights move across
// devices and the run finishes with the losses of an all-CPU run.
TEST_F(GpuTrain, CheckpointWrittenOnCudaResumesOnTheCpu) {
  TROUPE_REQUIRE_GPU();
  {
    testing::ChildProcess child(args("moved", {"train.steps=400"}), dir_ / "moved.out");
    ASSERT_TRUE(
        testing::wait_until([&] { return testing::last_step_printed(child.output()) >= 7; }, std::chrono::seconds(240)))
        << child.output();
    child.kill(SIGTERM);
    EXPECT_EQ(child.wait(std::chrono::seconds(60)), 128 + SIGTERM) << child.output();
  }
  auto resumed =
      testing::run_process(args("moved", {"train.steps=400", "runtime.device=cpu"}), std::chrono::seconds(600));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at step"), std::string::npos) << resumed.output;
  auto cpu = testing::run_process(args("cpu", {"train.steps=400", "runtime.device=cpu"}), std::chrono::seconds(600));
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  core::RunLogReader a(run("moved") / "log.h5"), b(run("cpu") / "log.h5");
  EXPECT_EQ(a.attribute("status"), "finished");
  const auto la = a.metric("train/loss"), lb = b.metric("train/loss");
  ASSERT_EQ(la.steps, lb.steps);
  EXPECT_NEAR(la.values.back(), lb.values.back(), 2e-2);
}

// Two GPU ranks all-reducing gradients over NCCL compute what one GPU does on the same global batch.
TEST_F(GpuTrain, TwoNcclRanksMatchOneRankOnTheSameGlobalBatch) {
  TROUPE_REQUIRE_GPUS(2);
  auto one = testing::run_process(args("one"), std::chrono::seconds(300));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  std::vector<std::string> two = {TROUPE_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2", "--mca",
                                  "btl",          "self,vader"};
  const auto rest = args("two");
  two.insert(two.end(), rest.begin(), rest.end());
  auto r2 = testing::run_process(two, std::chrono::seconds(300));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find("on 2 rank(s), cuda:0"), std::string::npos) << r2.output;
  core::RunLogReader a(run("one") / "log.h5"), b(run("two") / "log.h5");
  const auto la = a.metric("train/loss"), lb = b.metric("train/loss");
  ASSERT_EQ(la.steps, lb.steps);
  for (size_t i = 0; i < la.values.size(); ++i) EXPECT_NEAR(la.values[i], lb.values[i], 1e-4) << la.steps[i];
}

// The PPO quickstart (four worker processes over ipc://) with every model on the GPU learns its task.
TEST(Gpu, PpoQuickstartLearnsOnCuda) {
  TROUPE_REQUIRE_GPU();
  ScratchDir dir;
  auto r = testing::run_process(
      {testing::cli_path(), "run", (testing::source_dir() / "experiments/quickstart/ppo.yaml").string(),
       "run.dir=" + (dir / "runs").string(), "runtime.device=cuda"},
      std::chrono::seconds(600));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::RunLogReader log(dir / "runs/ppo-quickstart/log.h5");
  const auto reward = log.metric("reward/mean");
  ASSERT_EQ(reward.steps.size(), 40u);
  EXPECT_GT(reward.values.back(), 0.6);
  EXPECT_EQ(log.attribute("status"), "finished");
}

// Asynchronous GRPO with the weight push as an NCCL broadcast between worker processes (actor on cuda:0, rollout
// worker on cuda:1; NCCL wants one GPU per member): it runs, every push is checksum-verified (a mismatch would stop
// the run), the pattern is learned, and the first iteration equals the run whose pushes go over ZeroMQ.
TEST(Gpu, NcclWeightBroadcastBetweenWorkerProcessesMatchesTheZmqPush) {
  TROUPE_REQUIRE_GPUS(2);
  ScratchDir dir;
  testing::PatternTask task;
  task.ppo =
      "{iterations: 25, rollout_batch: 8, group_size: 4, minibatch: 16, epochs: 2,\n"
      "      advantage_estimator: grpo, kl_mode: loss, kl_estimator: k3, kl: {init_coef: 0.01},\n"
      "      async: {enabled: true, max_staleness: 1, rollout_device: \"cuda:1\"}}";
  testing::write_file(dir / "grpo.yaml", testing::pattern_task_yaml(dir / "runs", task));
  const std::vector<std::string> common = {"placement.mode=processes", "runtime.device=cuda:0"};
  std::vector<std::string> nccl = common;
  nccl.push_back("ppo.async.weight_sync=collective");
  auto a = testing::run_process(testing::run_args(dir / "grpo.yaml", "nccl", nccl), std::chrono::seconds(600));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b = testing::run_process(testing::run_args(dir / "grpo.yaml", "zmq", common), std::chrono::seconds(600));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  core::RunLogReader la(dir / "runs/nccl/log.h5"), lb(dir / "runs/zmq/log.h5");
  double pushes = 0;
  for (double p : la.metric("async/weight_pushes").values) pushes += p;
  EXPECT_GE(pushes, 10);
  const auto ra = la.metric("reward/raw_mean").values, rb = lb.metric("reward/raw_mean").values;
  ASSERT_EQ(ra.size(), 25u);
  EXPECT_NEAR(ra[0], rb[0], 1e-6);
  EXPECT_GT((ra[20] + ra[21] + ra[22] + ra[23] + ra[24]) / 5, 0.6);
}

}  // namespace
}  // namespace troupe
