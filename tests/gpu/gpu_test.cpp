// Tests that need a CUDA GPU (ctest label `gpu`). Without one every test here reports as skipped with the reason,
// never as passed; bench/gpu_check.sh runs them on a GPU machine. Each compares the CUDA path with the CPU path the
// rest of the suite checks: model forward/backward, KV-cache generation, checkpoints across devices, NCCL.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "core/device.h"
#include "core/errors.h"
#include "distributed/nccl_communicator.h"
#include "models/generation.h"
#include "models/gpt_io.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using testing::ScratchDir;

#define TROUPE_REQUIRE_GPU()                                                                        \
  if (torch::cuda::device_count() == 0)                                                             \
  GTEST_SKIP() << "no CUDA GPU visible (torch::cuda::device_count() == 0); run bench/gpu_check.sh " \
                  "on a GPU machine"

models::Gpt random_model(uint64_t seed) {
  models::GptConfig c;
  c.n_layer = 3;
  c.n_head = 4;
  c.n_embd = 64;
  c.block_size = 64;
  c.vocab_size = 211;
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
  core::SingleProcessCommunicator bootstrap;
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
  core::SingleProcessCommunicator bootstrap;
  auto nccl = distributed::NcclCommunicator::create(bootstrap, 0, std::chrono::seconds(60));
  torch::Tensor t = torch::ones({4});
  EXPECT_THROW(nccl->allreduce_sum(t), ConfigError);
}

}  // namespace
}  // namespace troupe
