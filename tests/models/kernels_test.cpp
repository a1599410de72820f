// Tests for models/kernels.h against the ATen compositions they replace (values and gradients, fp32 tightly and
// bf16 within bf16 rounding), and for GptImpl::lm_loss_sum against logits + cross_entropy.
#include "models/kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "models/gpt.h"
#include "models/optim.h"

namespace troupe::models::kernels {
namespace {

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

TEST(GeluKernel, MatchesAtenTanhGeluAndItsGradientInFp32) {
  torch::manual_seed(1);
  // Wide range: tails where tanh saturates, and values near 0 where 1 - 2/(e^2u + 1) cancels.
  torch::Tensor x = torch::cat({torch::randn({5000}) * 3, torch::linspace(-12, 12, 1001), torch::randn({100}) * 1e-4})
                        .requires_grad_(true);
  torch::Tensor ours = gelu_tanh(x);
  torch::Tensor dy = torch::randn_like(x);
  torch::Tensor g_ours = torch::autograd::grad({ours}, {x}, {dy})[0];
  torch::Tensor ref = torch::gelu(x, "tanh");
  torch::Tensor g_ref = torch::autograd::grad({ref}, {x}, {dy})[0];
  EXPECT_EQ(ours.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_abs(ours, ref), 2e-6);
  EXPECT_LT(max_abs(g_ours, g_ref), 2e-6);
  EXPECT_LT(max_abs(ours.slice(0, 6001), ref.slice(0, 6001)), 1e-10);  // tiny inputs: gelu(x) ~ x / 2
}

TEST(GeluKernel, Bf16StaysBf16AndMatchesFp32WithinRounding) {
  torch::manual_seed(2);
  torch::Tensor x = (torch::randn({4, 33, 65}) * 2).to(torch::kBFloat16).requires_grad_(true);
  torch::Tensor y = gelu_tanh(x);
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
  torch::Tensor dy = torch::randn_like(y);
  torch::Tensor gx = torch::autograd::grad({y}, {x}, {dy})[0];
  ASSERT_EQ(gx.scalar_type(), torch::kBFloat16);
  torch::Tensor xf = x.detach().to(torch::kFloat32).requires_grad_(true);
  torch::Tensor yf = torch::gelu(xf, "tanh");
  torch::Tensor gf = torch::autograd::grad({yf}, {xf}, {dy.to(torch::kFloat32)})[0];
  // bf16 keeps 8 significant bits: relative error <= 2^-8 of the value, plus rounding of dy.
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), yf, 8e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(gx.to(torch::kFloat32), gf, 2e-2, 2e-2));
}

TEST(GeluKernel, NanStaysNan) {
  torch::Tensor x = torch::tensor({0.5f, std::nanf(""), -1.0f});
  EXPECT_TRUE(std::isnan(gelu_tanh(x)[1].item<float>()));
  EXPECT_TRUE(std::isnan(gelu_tanh(x.to(torch::kBFloat16))[1].item<float>()));
  EXPECT_FALSE(std::isnan(gelu_tanh(x)[0].item<float>()));
}

// The reference: what models/gpt.cpp did before the kernel.
torch::Tensor ref_softmax(const torch::Tensor& scores, const torch::Tensor& keep) {
  return torch::softmax(scores.masked_fill(keep.logical_not(), -1e30f), -1);
}

TEST(MaskedSoftmaxKernel, CausalSliceMatchesMaskedFillSoftmaxWithGradient) {
  torch::manual_seed(3);
  const int64_t B = 3, H = 2, T = 5, S = 9, past = 4;  // a KV-cache step: queries at 4..8 over keys 0..8
  torch::Tensor causal = torch::ones({16, 16}, torch::kBool).tril();
  torch::Tensor keep = causal.slice(0, past, past + T).slice(1, 0, S).view({1, 1, T, S});  // strided, unit along S
  torch::Tensor x = (torch::randn({B, H, T, S}) * 4).requires_grad_(true);
  torch::Tensor dy = torch::randn({B, H, T, S});
  torch::Tensor p = masked_softmax(x, keep);
  torch::Tensor g = torch::autograd::grad({p}, {x}, {dy})[0];
  torch::Tensor pr = ref_softmax(x, keep);
  torch::Tensor gr = torch::autograd::grad({pr}, {x}, {dy})[0];
  EXPECT_LT(max_abs(p, pr), 1e-6);
  EXPECT_LT(max_abs(g, gr), 1e-6);
  EXPECT_EQ(p.masked_select(keep.logical_not().expand({B, H, T, S})).abs().max().item<float>(), 0.0f);
}

TEST(MaskedSoftmaxKernel, PerRowPaddingMaskAndFullyMaskedRowsStayUniform) {
  torch::manual_seed(4);
  const int64_t B = 2, H = 3, T = 4, S = 4;
  torch::Tensor pad = torch::tensor({{0, 0, 1, 1}, {1, 1, 1, 1}}, torch::kLong).to(torch::kBool);
  torch::Tensor keep = torch::ones({T, S}, torch::kBool).tril().view({1, 1, T, S}) & pad.view({B, 1, 1, S});
  torch::Tensor x = torch::randn({B, H, T, S}).requires_grad_(true);
  torch::Tensor dy = torch::randn({B, H, T, S});
  torch::Tensor p = masked_softmax(x, keep);
  torch::Tensor g = torch::autograd::grad({p}, {x}, {dy})[0];
  torch::Tensor pr = ref_softmax(x, keep);
  torch::Tensor gr = torch::autograd::grad({pr}, {x}, {dy})[0];
  EXPECT_LT(max_abs(p, pr), 1e-6);
  EXPECT_LT(max_abs(g, gr), 1e-6);
  // Row b=0, t=0 sees only padding: uniform, as masked_fill(-1e30) + softmax gives.
  EXPECT_LT(max_abs(p[0][1][0], torch::full({S}, 0.25f)), 1e-7);
}

TEST(MaskedSoftmaxKernel, Bf16MatchesFp32WithinRounding) {
  torch::manual_seed(5);
  torch::Tensor keep = torch::ones({7, 7}, torch::kBool).tril().view({1, 1, 7, 7});
  torch::Tensor x = (torch::randn({2, 2, 7, 7}) * 3).to(torch::kBFloat16).requires_grad_(true);
  torch::Tensor p = masked_softmax(x, keep);
  ASSERT_EQ(p.scalar_type(), torch::kBFloat16);
  torch::Tensor pf = ref_softmax(x.detach().to(torch::kFloat32), keep);
  EXPECT_TRUE(torch::allclose(p.to(torch::kFloat32), pf, 8e-3, 1e-3));
  EXPECT_NEAR(p.to(torch::kFloat32).sum(-1).mean().item<double>(), 1.0, 1e-2);
}

TEST(MaskedSoftmaxKernel, RejectsWrongShapes) {
  torch::Tensor keep = torch::ones({1, 1, 3, 3}, torch::kBool);
  EXPECT_THROW(masked_softmax(torch::randn({2, 3, 3}), keep), ConfigError);
  EXPECT_THROW(masked_softmax(torch::randn({1, 1, 3, 4}), keep), ConfigError);
  EXPECT_THROW(masked_softmax(torch::randn({1, 1, 3, 3}), keep.to(torch::kFloat32)), ConfigError);
}

struct CeCase {
  torch::Tensor h, w, y;
};

CeCase ce_case(int64_t N, int64_t C, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  CeCase c{torch::randn({N, C}).requires_grad_(true), (torch::randn({V, C}) * 0.3).requires_grad_(true),
           torch::randint(0, V, {N}, torch::kLong)};
  c.y[1] = -100;  // ignored positions contribute neither loss nor gradient
  c.y[N - 2] = -100;
  return c;
}

TEST(LinearCrossEntropyKernel, MatchesLogitsPlusCrossEntropyAcrossChunks) {
  CeCase c = ce_case(37, 12, 301, 6);
  torch::Tensor ref = torch::nn::functional::cross_entropy(
      torch::mm(c.h, c.w.t()), c.y,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  const auto gref = torch::autograd::grad({ref * 3}, {c.h, c.w});
  for (int64_t chunk : {int64_t{1} << 23, int64_t{301 * 5}, int64_t{1}}) {  // one chunk, 8 chunks, one row each
    torch::Tensor ours = linear_cross_entropy_sum(c.h, c.w, c.y, -100, false, chunk);
    const auto g = torch::autograd::grad({ours * 3}, {c.h, c.w});  // the upstream gradient scales both
    EXPECT_NEAR(ours.item<double>(), ref.item<double>(), 1e-4 * ref.item<double>()) << "chunk " << chunk;
    EXPECT_LT(max_abs(g[0], gref[0]), 1e-5) << "chunk " << chunk;
    EXPECT_LT(max_abs(g[1], gref[1]), 1e-5) << "chunk " << chunk;
    EXPECT_EQ(g[0][1].abs().max().item<float>(), 0.0f);
  }
}

TEST(LinearCrossEntropyKernel, Bf16IsCloseToFp32AndAllIgnoredGivesZero) {
  CeCase c = ce_case(64, 32, 500, 7);
  torch::Tensor f = linear_cross_entropy_sum(c.h, c.w, c.y, -100, false);
  torch::Tensor b = linear_cross_entropy_sum(c.h, c.w, c.y, -100, true);
  EXPECT_NEAR(b.item<double>(), f.item<double>(), 2e-2 * f.item<double>());
  const auto gf = torch::autograd::grad({f}, {c.h, c.w});
  const auto gb = torch::autograd::grad({b}, {c.h, c.w});
  EXPECT_LT(max_abs(gb[0], gf[0]) / gf[0].abs().max().item<double>(), 3e-2);
  EXPECT_LT(max_abs(gb[1], gf[1]) / gf[1].abs().max().item<double>(), 3e-2);
  torch::Tensor none = linear_cross_entropy_sum(c.h, c.w, torch::full({64}, -100, torch::kLong), -100, false);
  EXPECT_EQ(none.item<double>(), 0.0);
  EXPECT_EQ(torch::autograd::grad({none}, {c.w})[0].abs().max().item<float>(), 0.0f);
}

TEST(LinearCrossEntropyKernel, NoGradModeSkipsGradientsAndBadInputsThrow) {
  CeCase c = ce_case(8, 4, 10, 8);
  {
    torch::NoGradGuard no_grad;
    torch::Tensor l = linear_cross_entropy_sum(c.h, c.w, c.y, -100, false);
    EXPECT_FALSE(l.requires_grad());
    EXPECT_GT(l.item<double>(), 0.0);
  }
  c.y[0] = 10;
  EXPECT_THROW(linear_cross_entropy_sum(c.h, c.w, c.y, -100, false), DataError);
  EXPECT_THROW(linear_cross_entropy_sum(c.h, c.w.t(), c.y, -100, false), ConfigError);
}

GptConfig small_config(bool tied) {
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 16;
  c.vocab_size = 41;
  c.tie_embeddings = tied;
  return c;
}

TEST(GptLmLoss, FusedLossEqualsLogitsCrossEntropyForTiedAndUntiedHeads) {
  for (bool tied : {true, false}) {
    torch::manual_seed(9);
    Gpt model(small_config(tied));
    torch::Tensor ids = torch::randint(0, 41, {3, 16}, torch::kLong);
    torch::Tensor targets = torch::randint(0, 41, {3, 16}, torch::kLong);
    targets[0][3] = -100;
    GptInput in;
    in.ids = ids;
    torch::Tensor fused = model->lm_loss_sum(model->hidden(in), targets, -100);
    const auto g_fused = torch::autograd::grad({fused}, model->parameters());
    torch::Tensor logits = model->forward(ids);
    torch::Tensor ref = torch::nn::functional::cross_entropy(
        logits.reshape({-1, 41}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    const auto g_ref = torch::autograd::grad({ref}, model->parameters());
    EXPECT_NEAR(fused.item<double>(), ref.item<double>(), 1e-4) << "tied " << tied;
    for (size_t i = 0; i < g_ref.size(); ++i) EXPECT_LT(max_abs(g_fused[i], g_ref[i]), 1e-5) << "tied " << tied;
  }
}

TEST(GptLmLoss, Bf16AutocastTrainingStepTracksFp32) {
  torch::manual_seed(10);
  Gpt model(small_config(true));
  torch::Tensor ids = torch::randint(0, 41, {4, 16}, torch::kLong);
  GptInput in;
  in.ids = ids.slice(1, 0, 15);
  torch::Tensor y = ids.slice(1, 1, 16);
  torch::Tensor f = model->lm_loss_sum(model->hidden(in), y, -100);
  torch::Tensor b;
  {
    Bf16Autocast autocast(true);
    b = model->lm_loss_sum(model->hidden(in), y, -100);
  }
  EXPECT_NEAR(b.item<double>() / 60, f.item<double>() / 60, 2e-2);
  const auto gf = torch::autograd::grad({f}, model->parameters());
  const auto gb = torch::autograd::grad({b}, model->parameters());
  for (size_t i = 0; i < gf.size(); ++i) {
    ASSERT_EQ(gb[i].scalar_type(), torch::kFloat32);
    const double scale = gf[i].abs().max().item<double>() + 1e-3;
    EXPECT_LT(max_abs(gb[i], gf[i]) / scale, 0.1) << "parameter " << i;
  }
}

}  // namespace
}  // namespace troupe::models::kernels
