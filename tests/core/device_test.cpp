// Tests for core/device.h on this machine's devices: spec validation, local-rank discovery, and resolution. On a
// machine without a GPU, auto is the CPU and any cuda spec is a ConfigError naming the key; with GPUs (the gpu
// label's machines) auto is the local rank's GPU.
#include "core/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "core/errors.h"

namespace troupe::core {
namespace {

using ::testing::HasSubstr;

TEST(Device, ValidSpecs) {
  for (const char* s : {"auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:12"}) EXPECT_TRUE(valid_device_spec(s)) << s;
  for (const char* s : {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda:1a", "cpu:0", "cuda:123456"})
    EXPECT_FALSE(valid_device_spec(s)) << s;
}

TEST(Device, LocalRankFromTheLaunchersEnvironment) {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) ::unsetenv(v);
  EXPECT_EQ(local_rank(), 0);
  ::setenv("LOCAL_RANK", "3", 1);
  EXPECT_EQ(local_rank(), 3);
  ::setenv("SLURM_LOCALID", "2", 1);  // srun's wins over LOCAL_RANK
  EXPECT_EQ(local_rank(), 2);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);  // mpirun's wins over both
  EXPECT_EQ(local_rank(), 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);  // garbage is ignored
  EXPECT_EQ(local_rank(), 2);
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) ::unsetenv(v);
}

TEST(Device, CpuIsAlwaysTheCpu) { EXPECT_EQ(resolve_device("cpu", 5), torch::Device(torch::kCPU)); }

TEST(Device, BadSpecNamesTheKey) {
  try {
    resolve_device("gpu0", 0, "runtime.device");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("runtime.device"));
    EXPECT_THAT(e.what(), HasSubstr("gpu0"));
    EXPECT_THAT(e.what(), HasSubstr("auto, cpu, cuda or cuda:N"));
  }
}

TEST(Device, WithoutAGpuAutoIsTheCpuAndCudaIsAConfigError) {
  if (torch::cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU (tests/gpu covers it)";
  EXPECT_EQ(resolve_device("auto", 0), torch::Device(torch::kCPU));
  EXPECT_EQ(resolve_device("auto", 3), torch::Device(torch::kCPU));
  for (const char* spec : {"cuda", "cuda:0"}) {
    try {
      resolve_device(spec, 0, "actor.runtime.device");
      FAIL() << spec << ": no error";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("actor.runtime.device"));
      EXPECT_THAT(e.what(), HasSubstr("sees none"));
    }
  }
}

TEST(Device, DeterministicSwitchesAtensGlobalFlag) {
  set_deterministic(true);
  EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
  EXPECT_TRUE(at::globalContext().deterministicCuDNN());
  EXPECT_STREQ(std::getenv("CUBLAS_WORKSPACE_CONFIG"), ":4096:8");
  set_deterministic(false);
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
}

}  // namespace
}  // namespace troupe::core
