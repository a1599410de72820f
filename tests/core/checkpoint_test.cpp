// Tests for core/checkpoint*.h: round trips of every kind of state, pruning, the latest pointer,
// recovery past broken checkpoints, error messages, and a bit-exact training resume.
// Crash-during-save behaviour with a real killed process lives in checkpoint_crash_mp_test.cpp.
#include "core/checkpoint.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <fstream>
#include <numeric>
#include <random>

#include "tests/support/test_support.h"

namespace troupe::core {
namespace {
namespace fs = std::filesystem;
using troupe::testing::ScratchDir;

CheckpointManager make_manager(const fs::path& root, int keep_last = 3) {
  CheckpointOptions options;
  options.root = root;
  options.keep_last = keep_last;
  return CheckpointManager(options);
}

// A small state whose one tensor (2, 3) encodes the step: values step*10 + [0..5].
CheckpointState small_state(int64_t step) {
  CheckpointState s;
  s.step = step;
  s.tensor_groups["model"]["w"] = torch::arange(6, torch::kFloat32).reshape({2, 3}) + step * 10.0;
  s.extra["step"] = step;
  return s;
}

float first_value(const CheckpointState& s) { return s.tensor_groups.at("model").at("w")[0][0].item<float>(); }

// Asserts `fn` throws DataError whose message contains every one of `parts`.
template <class Fn>
void expect_data_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message lacks '" << part << "': " << e.what();
  }
}

TEST(Checkpoint, TensorGroupsRoundTripEveryDtype) {
  ScratchDir dir("ckpt");
  CheckpointState s;
  s.step = 7;
  auto& g = s.tensor_groups["mixed"];
  g["f32"] = torch::tensor({{1.5f, -2.25f, 3.0f}, {0.1f, 1e-30f, -0.0f}});
  g["f64"] = torch::tensor({0.1, 1.0 / 3.0}, torch::kFloat64);
  g["i64"] = torch::tensor({int64_t{-5}, int64_t{1} << 40, int64_t{7}});
  g["i32"] = torch::tensor({-1, 2}, torch::kInt32);
  g["u8"] = torch::tensor({0, 255}, torch::kUInt8);
  g["bool"] = torch::tensor({true, false, true});
  g["bf16"] = torch::tensor({1.0f, 2.5f, -0.125f}).to(torch::kBFloat16);
  g["f16"] = torch::tensor({1.0f, 65504.0f}).to(torch::kFloat16);
  g["transposed"] = torch::arange(6, torch::kFloat32).reshape({2, 3}).t();  // non-contiguous (3, 2)
  g["scalar"] = torch::tensor(42.0);                                        // 0-d
  g["empty"] = torch::zeros({0, 3});
  g["layer.0.weight"] = torch::ones({2});  // dotted names, as module parameters have
  s.tensor_groups["other"]["x"] = torch::tensor({9});

  auto manager = make_manager(dir.path());
  EXPECT_EQ(manager.save(s), dir.path() / "step_00000007");
  const CheckpointState loaded = manager.load(dir.path() / "step_00000007");
  EXPECT_EQ(loaded.step, 7);
  ASSERT_EQ(loaded.tensor_groups.size(), 2u);
  ASSERT_EQ(loaded.tensor_groups.at("mixed").size(), g.size());
  for (const auto& [name, t] : g) {
    const torch::Tensor& back = loaded.tensor_groups.at("mixed").at(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back, t)) << name;
  }
  EXPECT_TRUE(torch::equal(loaded.tensor_groups.at("other").at("x"), torch::tensor({9})));
}

TEST(Checkpoint, ExtraValuesRoundTripEveryType) {
  ScratchDir dir("ckpt");
  CheckpointState s;
  s.step = 3;
  s.extra["step"] = int64_t{-9'000'000'000};
  s.extra["kl_coef"] = 0.1;  // not exactly representable: must survive bit for bit
  s.extra["done"] = true;
  s.extra["tag"] = std::string("héllo\nworld\0x", 13);
  s.extra["cursor"] = std::vector<int64_t>{3, 1, 4, 1, 5};
  s.extra["losses"] = std::vector<double>{2.5, -1e-300, 1e300};
  s.extra["no_ints"] = std::vector<int64_t>{};
  auto manager = make_manager(dir.path());
  manager.save(s);
  const CheckpointState loaded = *manager.load_latest();
  EXPECT_EQ(loaded.extra, s.extra);
  EXPECT_EQ(loaded.get<int64_t>("step"), -9'000'000'000);
  EXPECT_EQ(loaded.get<double>("kl_coef"), 0.1);
  EXPECT_EQ(loaded.get<bool>("done"), true);
  EXPECT_EQ(loaded.get<std::string>("tag").size(), 13u);
  EXPECT_EQ(loaded.get<std::vector<int64_t>>("cursor"), (std::vector<int64_t>{3, 1, 4, 1, 5}));
  EXPECT_EQ(loaded.get<std::vector<double>>("losses")[1], -1e-300);
  EXPECT_EQ(loaded.get_or<int64_t>("absent", 17), 17);
}

TEST(Checkpoint, AdamStateRoundTripGivesIdenticalUpdates) {
  ScratchDir dir("ckpt");
  torch::manual_seed(0);
  auto w = torch::randn({3, 4}).requires_grad_();
  torch::optim::Adam adam({w}, torch::optim::AdamOptions(0.05).betas({0.8, 0.9}));
  auto train_step = [](torch::Tensor& p, torch::optim::Optimizer& opt) {
    opt.zero_grad();
    (p * p + p.sin()).sum().backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) train_step(w, adam);

  CheckpointState s;
  s.tensor_groups["w"]["w"] = w.detach().clone();
  s.add_optimizer("adam", adam);
  auto manager = make_manager(dir.path());
  manager.save(s);
  const CheckpointState loaded = *manager.load_latest();

  auto w2 = loaded.tensor_groups.at("w").at("w").clone().requires_grad_();
  // Different lr and betas: load_optimizer must restore them along with the moments and step.
  torch::optim::Adam adam2({w2}, torch::optim::AdamOptions(1.0));
  loaded.load_optimizer("adam", adam2);
  for (int i = 0; i < 4; ++i) {
    train_step(w, adam);
    train_step(w2, adam2);
    ASSERT_TRUE(torch::equal(w, w2)) << "diverged at step " << i;
  }
}

TEST(Checkpoint, TorchRngRestoreRepeatsDraws) {
  ScratchDir dir("ckpt");
  torch::manual_seed(123);
  torch::randn({10});
  CheckpointState s;
  s.capture_torch_rng();
  const torch::Tensor expected = torch::randn({5});
  auto manager = make_manager(dir.path());
  manager.save(s);
  torch::randn({7});  // move the generator on
  manager.load_latest()->restore_torch_rng();
  EXPECT_TRUE(torch::equal(torch::randn({5}), expected));
  EXPECT_THROW(CheckpointState().restore_torch_rng(), DataError);
}

TEST(Checkpoint, StdRngsRoundTrip) {
  ScratchDir dir("ckpt");
  std::mt19937_64 shuffle(7), sampling(8);
  shuffle.discard(1000);
  CheckpointState s;
  s.add_rng("shuffle", shuffle);
  s.add_rng("sampling", sampling);
  auto manager = make_manager(dir.path());
  manager.save(s);
  const CheckpointState loaded = *manager.load_latest();
  std::mt19937_64 a, b;
  loaded.load_rng("shuffle", a);
  loaded.load_rng("sampling", b);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a(), shuffle());
    ASSERT_EQ(b(), sampling());
  }
  expect_data_error([&] { loaded.load_rng("data", a); }, {"'data'", "sampling, shuffle"});
}

TEST(Checkpoint, LatestPointsAtNewestSave) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  EXPECT_EQ(manager.latest_hint(), std::nullopt);
  manager.save(small_state(5));
  manager.save(small_state(12));
  EXPECT_EQ(troupe::testing::read_file(dir / "latest"), "step_00000012\n");
  EXPECT_EQ(manager.latest_hint(), "step_00000012");
  EXPECT_EQ(manager.load_latest()->step, 12);
  EXPECT_EQ(first_value(*manager.load_latest()), 120.0f);
}

TEST(Checkpoint, KeepLastPrunesOldest) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path(), /*keep_last=*/2);
  for (int64_t step : {1, 2, 3, 4}) manager.save(small_state(step));
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{3, 4}));
  EXPECT_FALSE(fs::exists(dir / "step_00000001"));
  EXPECT_FALSE(fs::exists(dir / "step_00000002"));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  }
}

TEST(Checkpoint, KeepLastZeroKeepsAll) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path(), /*keep_last=*/0);
  for (int64_t step : {1, 2, 3, 4, 5}) manager.save(small_state(step));
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(Checkpoint, SavingAnExistingStepReplacesIt) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(2));
  CheckpointState again = small_state(2);
  again.tensor_groups["model"]["w"] = torch::full({2, 3}, -1.0f);
  manager.save(again);
  EXPECT_EQ(first_value(manager.load(dir / "step_00000002")), -1.0f);
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{2}));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
  }
}

TEST(Checkpoint, LoadLatestSkipsCheckpointWithoutManifest) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  manager.save(small_state(2));
  fs::remove(dir / "step_00000002" / "manifest.bin");  // as if the save died before the manifest
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1}));
  EXPECT_EQ(manager.load_latest()->step, 1);
  expect_data_error([&] { manager.load(dir / "step_00000002"); }, {"step_00000002", "manifest.bin"});
}

TEST(Checkpoint, LoadLatestSkipsTruncatedFile) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  manager.save(small_state(2));
  const fs::path file = dir / "step_00000002" / "model.pt";
  fs::resize_file(file, fs::file_size(file) / 2);
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1}));
  EXPECT_EQ(manager.load_latest()->step, 1);
  expect_data_error([&] { manager.load(dir / "step_00000002"); }, {file.string(), "truncated"});
}

TEST(Checkpoint, LoadLatestSkipsCorruptedByte) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  manager.save(small_state(2));
  const fs::path file = dir / "step_00000002" / "model.pt";
  std::string bytes = troupe::testing::read_file(file);
  bytes[bytes.size() / 2] ^= 0x01;  // same size, one bit flipped: only the CRC can tell
  troupe::testing::write_file(file, bytes);
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1, 2}));  // sizes still match
  EXPECT_EQ(manager.load_latest()->step, 1);
  expect_data_error([&] { manager.load(dir / "step_00000002"); }, {file.string(), "CRC-32"});
}

TEST(Checkpoint, UnknownManifestVersionIsRejected) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  manager.save(small_state(2));
  {  // A manifest from a future format: the magic, then version 99 (nothing after is read).
    std::ofstream out(dir / "step_00000002" / "manifest.bin", std::ios::binary | std::ios::trunc);
    cereal::PortableBinaryOutputArchive ar(out);
    ar(std::string(kManifestMagic), uint32_t{99});
  }
  expect_data_error([&] { manager.load(dir / "step_00000002"); }, {"manifest version 99", "reads version 1"});
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1}));
  EXPECT_EQ(manager.load_latest()->step, 1);
}

TEST(Checkpoint, TemporariesAreIgnoredAndRemoved) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  // A complete-looking copy under a temporary name, and a half-written one: neither counts.
  fs::copy(dir / "step_00000001", dir / ".tmp-step_00000009-424242");
  fs::create_directory(dir / ".tmp-step_00000010-424242");
  troupe::testing::write_file(dir / ".tmp-step_00000010-424242" / "model.pt", "partial");
  troupe::testing::write_file(dir / ".tmp-latest-424242", "step_00000010\n");
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1}));
  EXPECT_EQ(manager.load_latest()->step, 1);
  manager.remove_stale_temporaries();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_00000001"}));
}

TEST(Checkpoint, LoadLatestWithNothingToLoadIsNullopt) {
  ScratchDir dir("ckpt");
  EXPECT_EQ(make_manager(dir / "never-created").load_latest(), std::nullopt);
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  fs::remove(dir / "step_00000001" / "model.pt");
  EXPECT_EQ(manager.load_latest(), std::nullopt);
  EXPECT_TRUE(manager.complete_steps().empty());
}

TEST(Checkpoint, ObserverSeesEveryFileAndManifestLast) {
  ScratchDir dir("ckpt");
  std::vector<std::string> seen;
  CheckpointOptions options;
  options.root = dir.path();
  options.on_file_written = [&](const fs::path& p) { seen.push_back(p.filename()); };
  CheckpointManager manager(options);
  CheckpointState s = small_state(4);
  s.tensor_groups["critic"]["v"] = torch::zeros({2});
  torch::nn::Linear lin(2, 2);
  torch::optim::SGD sgd(lin->parameters(), 0.1);
  s.add_optimizer("sgd", sgd);
  s.add_rng("data", std::mt19937_64(1));
  manager.save(s);
  EXPECT_EQ(seen, (std::vector<std::string>{"critic.pt", "model.pt", "sgd.optim.pt", "rng.bin", "manifest.json",
                                            "manifest.bin", "latest"}));
  const std::string json = troupe::testing::read_file(dir / "step_00000004" / "manifest.json");
  EXPECT_NE(json.find("\"version\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"step\": 4"), std::string::npos) << json;
}

TEST(Checkpoint, InvalidStatesAreRejectedBeforeWriting) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  CheckpointState bad_group = small_state(1);
  bad_group.tensor_groups["../evil"]["w"] = torch::zeros({1});
  expect_data_error([&] { manager.save(bad_group); }, {"'../evil'", "tensor group"});
  CheckpointState undefined = small_state(1);
  undefined.tensor_groups["model"]["u"] = torch::Tensor();
  EXPECT_THROW(manager.save(undefined), DataError);
  EXPECT_THROW(manager.save(small_state(-1)), DataError);
  EXPECT_THROW(make_manager(dir.path(), -1), ConfigError);
  EXPECT_FALSE(fs::exists(dir / "step_00000001"));
}

// Makes writes past `bytes` fail with EFBIG (SIGXFSZ ignored) until destroyed: a disk-full stand-in.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limited = old_;
    limited.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limited);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

TEST(Checkpoint, WriteFailureRaisesIoErrorAndLeavesNothing) {
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());
  manager.save(small_state(1));
  CheckpointState big = small_state(2);
  big.tensor_groups["big"]["w"] = torch::ones({1'000'000});  // 4 MB: past the limit
  {
    FileSizeLimit limit(1 << 20);
    try {
      manager.save(big);
      ADD_FAILURE() << "expected IoError";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("big.pt"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("File too large"), std::string::npos) << e.what();
    }
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_00000001"}));
  EXPECT_EQ(manager.load_latest()->step, 1);
}

struct TwoLayerImpl : torch::nn::Module {
  TwoLayerImpl(int64_t in, int64_t hidden) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 1));
    register_buffer("count", torch::zeros({1}, torch::kInt64));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TwoLayer);

TEST(Checkpoint, LoadModuleCopiesParametersAndBuffers) {
  TwoLayer source(3, 4), target(3, 4);
  source->named_buffers()["count"].fill_(5);
  CheckpointState s;
  s.add_module("net", *source);
  EXPECT_EQ(s.tensor_groups.at("net").size(), 5u);  // fc1.{weight,bias}, fc2.{weight,bias}, count
  s.load_module("net", *target);
  for (const auto& p : source->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), target->named_parameters()[p.key()])) << p.key();
  }
  EXPECT_EQ(target->named_buffers()["count"].item<int64_t>(), 5);
  // add_module copies: later training of the source does not change the state.
  torch::NoGradGuard no_grad;
  source->fc1->weight.add_(1.0);
  EXPECT_FALSE(torch::equal(s.tensor_groups.at("net").at("fc1.weight"), source->fc1->weight));
}

TEST(Checkpoint, LoadModuleNamesEveryMismatchAndChangesNothing) {
  CheckpointState s;
  s.add_module("net", *TwoLayer(3, 4));
  TwoLayer wider(3, 5);
  const torch::Tensor before = wider->fc1->weight.clone();
  expect_data_error([&] { s.load_module("net", *wider); },
                    {"'net'", "'fc1.weight' has shape [4, 3] in the checkpoint but [5, 3]", "'fc2.weight'"});
  EXPECT_TRUE(torch::equal(wider->fc1->weight, before));

  s.tensor_groups["net"].erase("fc2.bias");
  s.tensor_groups["net"]["fc3.weight"] = torch::zeros({1});
  expect_data_error([&] { s.load_module("net", *TwoLayer(3, 4)); }, {"missing 'fc2.bias'", "unexpected 'fc3.weight'"});
  expect_data_error([&] { s.load_module("critic", *TwoLayer(3, 4)); }, {"'critic'", "net"});
}

TEST(Checkpoint, GetNamesMissingKeyAndWrongType) {
  CheckpointState s;
  s.extra["kl_coef"] = 0.2;
  s.extra["step"] = int64_t{4};
  expect_data_error([&] { s.get<int64_t>("cursor"); }, {"'cursor'", "kl_coef, step"});
  expect_data_error([&] { s.get<int64_t>("kl_coef"); }, {"'kl_coef'", "holds double", "not int64"});
  expect_data_error([&] { s.get_or<std::string>("step", "x"); }, {"'step'", "int64", "string"});
  EXPECT_EQ(s.get<double>("kl_coef"), 0.2);
}

// ---- bit-exact resume: AdamW, dropout (torch RNG) and a std engine shuffling the data ----

struct MlpImpl : torch::nn::Module {
  MlpImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(4, 16));
    drop = register_module("drop", torch::nn::Dropout(0.3));
    fc2 = register_module("fc2", torch::nn::Linear(16, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(drop(torch::relu(fc1(x)))); }  // (B, 4) -> (B, 1)
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Mlp);

Mlp seeded_mlp(uint64_t seed) {
  torch::manual_seed(seed);
  return Mlp();
}

// Everything a resume must restore; `init_seed` makes a fresh run start from different state.
struct TinyRun {
  explicit TinyRun(uint64_t init_seed)
      : model(seeded_mlp(init_seed)),
        opt(model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.1)),
        shuffle(init_seed) {}

  void train_step() {
    const torch::Tensor x = torch::linspace(-1, 1, 128).reshape({32, 4});  // (32, 4)
    const torch::Tensor y = x.sum(1, /*keepdim=*/true).sin();              // (32, 1)
    std::vector<int64_t> order(32);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), shuffle);
    const torch::Tensor batch = torch::tensor(std::vector<int64_t>(order.begin(), order.begin() + 8));
    opt.zero_grad();
    torch::mse_loss(model->forward(x.index_select(0, batch)), y.index_select(0, batch)).backward();
    opt.step();
  }

  CheckpointState capture(int64_t step) {
    CheckpointState s;
    s.step = step;
    s.add_module("model", *model);
    s.add_optimizer("adamw", opt);
    s.capture_torch_rng();
    s.add_rng("shuffle", shuffle);
    return s;
  }

  void restore(const CheckpointState& s, bool with_torch_rng = true) {
    s.load_module("model", *model);
    s.load_optimizer("adamw", opt);
    if (with_torch_rng) s.restore_torch_rng();
    s.load_rng("shuffle", shuffle);
  }

  Mlp model;
  torch::optim::AdamW opt;
  std::mt19937_64 shuffle;
};

bool same_parameters(const Mlp& a, const Mlp& b) {
  auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  }
  return true;
}

TEST(Checkpoint, ResumeIsBitExact) {
  constexpr int kBefore = 5, kAfter = 6;
  ScratchDir dir("ckpt");
  auto manager = make_manager(dir.path());

  TinyRun straight(1);
  for (int i = 0; i < kBefore; ++i) straight.train_step();
  const CheckpointState at_save = straight.capture(kBefore);
  manager.save(at_save);
  for (int i = 0; i < kAfter; ++i) straight.train_step();

  TinyRun resumed(2);
  EXPECT_FALSE(same_parameters(resumed.model, straight.model));
  resumed.restore(*manager.load_latest());
  for (int i = 0; i < kAfter; ++i) resumed.train_step();
  EXPECT_TRUE(same_parameters(resumed.model, straight.model));
  EXPECT_FALSE(torch::equal(at_save.tensor_groups.at("model").at("fc1.weight"), straight.model->fc1->weight))
      << "training after the save changed nothing";

  // Control: the same resume without the torch RNG draws other dropout masks and diverges.
  TinyRun no_rng(3);
  no_rng.restore(*manager.load_latest(), /*with_torch_rng=*/false);
  torch::manual_seed(12345);
  for (int i = 0; i < kAfter; ++i) no_rng.train_step();
  EXPECT_FALSE(same_parameters(no_rng.model, straight.model));
}

}  // namespace
}  // namespace troupe::core
