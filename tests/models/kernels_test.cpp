// Tests for models/kernels.h against the ATen compositions they replace (values and gradients, fp32 tightly and
// bf16 within bf16 rounding), and for GptImpl::lm_loss_sum against logits + cross_entropy.
#include "models/kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>

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

// Kernel and reference, values and the gradient for dy, agree within 1e-6; returns the kernel's probabilities.
torch::Tensor expect_softmax_matches_reference(const torch::Tensor& x, const torch::Tensor& keep,
                                               const torch::Tensor& dy) {
  torch::Tensor p = masked_softmax(x, keep);
  torch::Tensor g = torch::autograd::grad({p}, {x}, {dy})[0];
  torch::Tensor pr = ref_softmax(x, keep);
  torch::Tensor gr = torch::autograd::grad({pr}, {x}, {dy})[0];
  EXPECT_LT(max_abs(p, pr), 1e-6);
  EXPECT_LT(max_abs(g, gr), 1e-6);
  return p;
}

TEST(MaskedSoftmaxKernel, CausalSliceMatchesMaskedFillSoftmaxWithGradient) {
  torch::manual_seed(3);
  const int64_t B = 3, H = 2, T = 5, S = 9, past = 4;  // a KV-cache step: queries at 4..8 over keys 0..8
  torch::Tensor causal = torch::ones({16, 16}, torch::kBool).tril();
  torch::Tensor keep = causal.slice(0, past, past + T).slice(1, 0, S).view({1, 1, T, S});  // strided, unit along S
  torch::Tensor x = (torch::randn({B, H, T, S}) * 4).requires_grad_(true);
  torch::Tensor dy = torch::randn({B, H, T, S});
  torch::Tensor p = expect_softmax_matches_reference(x, keep, dy);
  EXPECT_EQ(p.masked_select(keep.logical_not().expand({B, H, T, S})).abs().max().item<float>(), 0.0f);
}

TEST(MaskedSoftmaxKernel, PerRowPaddingMaskAndFullyMaskedRowsStayUniform) {
  torch::manual_seed(4);
  const int64_t B = 2, H = 3, T = 4, S = 4;
  torch::Tensor pad = torch::tensor({{0, 0, 1, 1}, {1, 1, 1, 1}}, torch::kLong).to(torch::kBool);
  torch::Tensor keep = torch::ones({T, S}, torch::kBool).tril().view({1, 1, T, S}) & pad.view({B, 1, 1, S});
  torch::Tensor x = torch::randn({B, H, T, S}).requires_grad_(true);
  torch::Tensor dy = torch::randn({B, H, T, S});
  torch::Tensor p = expect_softmax_matches_reference(x, keep, dy);
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

TEST(LayerNormKernel, MatchesAtenValuesAndGradientsInFp32WithAndWithoutBias) {
  torch::manual_seed(11);
  for (bool with_bias : {true, false}) {
    torch::Tensor x = (torch::randn({3, 70, 48}) * 2 + 0.5).requires_grad_(true);
    torch::Tensor w = (torch::rand({48}) + 0.5).requires_grad_(true);
    torch::Tensor b = with_bias ? torch::randn({48}).requires_grad_(true) : torch::Tensor();
    torch::Tensor dy = torch::randn({3, 70, 48});
    torch::Tensor y = layer_norm(x, w, b, 1e-5, torch::kFloat32);
    torch::Tensor yr = torch::layer_norm(x, {48}, w, b, 1e-5);
    std::vector<torch::Tensor> in = {x, w};
    if (with_bias) in.push_back(b);
    const auto g = torch::autograd::grad({y}, in, {dy});
    const auto gr = torch::autograd::grad({yr}, in, {dy});
    EXPECT_LT(max_abs(y, yr), 1e-5);
    for (size_t i = 0; i < in.size(); ++i)
      EXPECT_LT(max_abs(g[i], gr[i]), 1e-4) << "input " << i << " bias " << with_bias;
  }
}

TEST(LayerNormKernel, Bf16OutputFromFp32InputGivesFp32InputGradient) {
  torch::manual_seed(12);
  torch::Tensor x = torch::randn({64, 32}).requires_grad_(true);
  torch::Tensor w = torch::ones({32}).requires_grad_(true), b = torch::zeros({32}).requires_grad_(true);
  torch::Tensor y = layer_norm(x, w, b, 1e-5, torch::kBFloat16);
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
  torch::Tensor dy = torch::randn({64, 32}).to(torch::kBFloat16);
  const auto g = torch::autograd::grad({y}, {x, w, b}, {dy});
  ASSERT_EQ(g[0].scalar_type(), torch::kFloat32);
  torch::Tensor yr = torch::layer_norm(x, {32}, w, b, 1e-5);
  const auto gr = torch::autograd::grad({yr}, {x, w, b}, {dy.to(torch::kFloat32)});
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), yr, 8e-3, 8e-3));
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(max_abs(g[i], gr[i]), 1e-4) << "input " << i;  // same dy, fp32 math
  EXPECT_THROW(layer_norm(x.to(torch::kBFloat16), w, b, 1e-5, torch::kFloat32), ConfigError);
  EXPECT_THROW(layer_norm(x, w.to(torch::kBFloat16), b, 1e-5, torch::kFloat32), ConfigError);
}

TEST(LayerNormKernel, ParameterGradientsAreTheSameBitsForAnyThreadCount) {
  torch::manual_seed(13);
  torch::Tensor x = torch::randn({1000, 64}).requires_grad_(true);
  torch::Tensor w = torch::randn({64}).requires_grad_(true), b = torch::randn({64}).requires_grad_(true);
  torch::Tensor dy = torch::randn({1000, 64});
  const int before = at::get_num_threads();
  std::vector<std::vector<torch::Tensor>> grads;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    grads.push_back(torch::autograd::grad({layer_norm(x, w, b, 1e-5, torch::kFloat32)}, {x, w, b}, {dy}));
  }
  at::set_num_threads(before);
  for (size_t t = 1; t < grads.size(); ++t) {
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(grads[t][i], grads[0][i])) << "threads case " << t;
  }
}

TEST(LinearBf16Kernel, MatchesAutocastLinearWithAndWithoutBias) {
  torch::manual_seed(15);
  for (bool with_bias : {true, false}) {
    torch::Tensor x = torch::randn({4, 5, 24}).requires_grad_(true);
    torch::Tensor w = (torch::randn({16, 24}) * 0.2).requires_grad_(true);
    torch::Tensor b = with_bias ? torch::randn({16}).requires_grad_(true) : torch::Tensor();
    torch::Tensor y = linear_bf16(x, w, b);
    ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{4, 5, 16}));
    torch::Tensor yr;
    {
      Bf16Autocast autocast(true);
      yr = torch::linear(x, w, b);
    }
    ASSERT_EQ(yr.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), yr.to(torch::kFloat32), 1e-2, 1e-2));
    torch::Tensor dy = torch::randn({4, 5, 16}).to(torch::kBFloat16);
    std::vector<torch::Tensor> in = {x, w};
    if (with_bias) in.push_back(b);
    const auto g = torch::autograd::grad({y}, in, {dy});
    const auto gr = torch::autograd::grad({yr}, in, {dy});
    for (size_t i = 0; i < in.size(); ++i) {
      ASSERT_EQ(g[i].scalar_type(), torch::kFloat32) << "input " << i;
      const double scale = gr[i].abs().max().item<double>();
      EXPECT_LT(max_abs(g[i], gr[i]) / scale, 2e-2) << "input " << i << " bias " << with_bias;
    }
    if (with_bias) {  // the bias gradient is an fp32 column sum of dy: exact up to fp32 rounding
      EXPECT_LT(max_abs(g[2], dy.to(torch::kFloat32).reshape({-1, 16}).sum(0)), 1e-4);
    }
  }
  // A bf16 input gets a bf16 gradient.
  torch::Tensor xb = torch::randn({6, 24}).to(torch::kBFloat16).requires_grad_(true);
  torch::Tensor w = torch::randn({16, 24}).requires_grad_(true);
  EXPECT_EQ(torch::autograd::grad({linear_bf16(xb, w, torch::Tensor()).sum()}, {xb})[0].scalar_type(),
            torch::kBFloat16);
  EXPECT_THROW(linear_bf16(torch::randn({3, 5}), w, torch::Tensor()), ConfigError);
}

// Tiny gradients make the second moment denormal (1e-21² · 0.05 ≈ 5e-44): under -ffast-math the square root was a
// reciprocal-square-root expansion that turned a denormal into NaN, and the weights with it (seen in GRPO runs whose
// rewards were all equal: only a KL term of ~1e-7 was left). The update must stay finite and match torch's.
TEST(AdamWKernel, DenormalSecondMomentsGiveFiniteUpdates) {
  for (float g : {0.0f, 1e-21f, 1e-19f, 1e-23f, -3e-22f}) {
    auto p = torch::full({64}, 0.5f), grad = torch::full({64}, g);
    auto m = torch::zeros({64}), v = torch::zeros({64});
    adamw_update(p, grad, m, v, 3e-3, 0.9, 0.95, 1e-8, 0.1, 1);
    EXPECT_TRUE(torch::isfinite(p).all().item<bool>()) << "gradient " << g;
    // torch's arithmetic in double: p·(1 − lr·wd) − lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps).
    const double gd = g, md = 0.1 * gd, vd = 0.05 * gd * gd;
    const double want = 0.5 * (1 - 3e-3 * 0.1) - 3e-3 / 0.1 * md / (std::sqrt(vd) / std::sqrt(0.05) + 1e-8);
    EXPECT_NEAR(p[0].item<double>(), want, 1e-6) << "gradient " << g;
  }
}

TEST(AdamWKernel, FusedStepTracksTorchAdamWAndKeepsItsState) {
  torch::manual_seed(14);
  torch::nn::Linear a(torch::nn::LinearOptions(20, 30)), b(torch::nn::LinearOptions(20, 30));
  {
    torch::NoGradGuard no_grad;
    b->weight.copy_(a->weight);
    b->bias.copy_(a->bias);
  }
  OptimConfig oc;
  oc.lr = 1e-2;
  oc.weight_decay = 0.1;
  auto fused = make_adamw(*a, oc);  // the fused step
  auto options = torch::optim::AdamWOptions(oc.lr).betas({oc.beta1, oc.beta2}).eps(oc.eps).weight_decay(0.1);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{b->weight}, std::make_unique<torch::optim::AdamWOptions>(options));
  auto no_decay = std::make_unique<torch::optim::AdamWOptions>(options);
  no_decay->weight_decay(0.0);
  groups.emplace_back(std::vector<torch::Tensor>{b->bias}, std::move(no_decay));
  torch::optim::AdamW plain(groups, options);
  for (int step = 0; step < 5; ++step) {
    torch::Tensor x = torch::randn({8, 20});
    fused->zero_grad();
    plain.zero_grad();
    a->forward(x).pow(2).sum().backward();
    b->forward(x).pow(2).sum().backward();
    fused->step();
    plain.step();
  }
  EXPECT_LT(max_abs(a->weight, b->weight), 1e-6);
  EXPECT_LT(max_abs(a->bias, b->bias), 1e-6);
  EXPECT_GT(max_abs(a->weight, torch::zeros_like(a->weight)), 0.0);
  // The state is torch's: a plain AdamW loading the fused one's checkpoint continues identically.
  std::stringstream saved;
  {
    torch::serialize::OutputArchive out;
    fused->save(out);
    out.save_to(saved);
  }
  torch::serialize::InputArchive in;
  in.load_from(saved);
  auto& state = fused->state();
  ASSERT_EQ(state.size(), 2u);
  const auto& st = static_cast<const torch::optim::AdamWParamState&>(*state.at(a->weight.unsafeGetTensorImpl()));
  EXPECT_EQ(st.step(), 5);
  const auto& stp =
      static_cast<const torch::optim::AdamWParamState&>(*plain.state().at(b->weight.unsafeGetTensorImpl()));
  EXPECT_LT(max_abs(st.exp_avg_sq(), stp.exp_avg_sq()) / stp.exp_avg_sq().abs().max().item<double>(), 1e-6);
  EXPECT_NO_THROW(plain.load(in));
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
