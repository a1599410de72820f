// Tests for models/quant.h and the quantized GPT (models/gpt.h quantize_gpt): hand-computed codes for each format,
// round-trip error bounds, the decode kernels against the dequantized product, fake quantization's straight-through
// gradient, a quantized GPT's logits, generation and checkpoint round trip, and QLoRA (only adapters train).
// Equality with bitsandbytes is tests/models/quant_bnb_test.py; the kernels alone are quant_kernels_test.cpp.
#include "models/quant.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/checkpoint_state.h"
#include "core/errors.h"
#include "models/generation.h"
#include "models/gpt.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace {

QuantOptions opts(QuantScheme s, int64_t group = 0, bool dq = true) { return QuantOptions{s, group, dq}; }

std::vector<int64_t> bytes_of(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(Quant, Int8HandComputed) {
  // row 0: absmax 4 -> scale 4/127; 1 * 31.75 = 31.75 -> 32, -2 -> -63.5 -> -64 (half to even), 0.5 -> 15.875 -> 16
  // row 1: all zero -> scale 0, codes 0
  const torch::Tensor w = torch::tensor({1.0f, -2.0f, 0.5f, 4.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 4});
  const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kInt8));
  EXPECT_EQ(bytes_of(q.data), (std::vector<int64_t>{32, -64, 16, 127, 0, 0, 0, 0}));
  EXPECT_FLOAT_EQ(q.scale[0].item<float>(), 4.0f / 127.0f);
  EXPECT_FLOAT_EQ(q.scale[1].item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(q.dequantize()[1], torch::zeros({4})));
  EXPECT_EQ(q.storage_bytes(), 8 + 2 * 4);
}

TEST(Quant, Int4HandComputedAndPacking) {
  // one group of 4: min 0, max 3 -> scale 0.2, codes 0 5 10 15, packed high nibble first: 0x05, 0xAF
  // second row, group [-1, -1, 1, 1]: min -1, scale 2/15, codes 0 0 15 15 -> 0x00, 0xFF
  const torch::Tensor w = torch::tensor({0.0f, 1.0f, 2.0f, 3.0f, -1.0f, -1.0f, 1.0f, 1.0f}).view({2, 4});
  const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kInt4, 4));
  EXPECT_EQ(bytes_of(q.data), (std::vector<int64_t>{0x05, 0xAF, 0x00, 0xFF}));
  EXPECT_FLOAT_EQ(q.scale[0][0].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ(q.minimum[1][0].item<float>(), -1.0f);
  EXPECT_TRUE(torch::allclose(q.dequantize(), w, 1e-6, 1e-6));
}

TEST(Quant, Nf4HandComputed) {
  // block [1, -0.5]: absmax 1; 1 -> code 15; -0.5 lies between the midpoints -0.6106 and -0.4600 -> code 2
  // (-0.5251); block [0.1, -0.2] / 0.2 = [0.5, -1]: 0.5 between 0.5016 (mid 0.4407/0.5626) -> code 12 (0.4407)...
  // 0.5 < (0.44070983 + 0.56261700) / 2 = 0.50166 -> code 12; -1 -> code 0.
  const torch::Tensor w = torch::tensor({1.0f, -0.5f, 0.1f, -0.2f});
  const Nf4Blocks b = nf4_quantize_blocks(w, 2);
  EXPECT_EQ(bytes_of(b.packed), (std::vector<int64_t>{(15 << 4) | 2, (12 << 4) | 0}));
  EXPECT_FLOAT_EQ(b.absmax[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(b.absmax[1].item<float>(), 0.2f);
  const torch::Tensor d = nf4_dequantize_blocks(b.packed, b.absmax, 2);
  EXPECT_FLOAT_EQ(d[1].item<float>(), -0.5250730514526367f);
  EXPECT_FLOAT_EQ(d[2].item<float>(), 0.44070982933044434f * 0.2f);
}

TEST(Quant, CodeBooksAreSortedWithZero) {
  const auto& nf4 = nf4_code_book();
  EXPECT_TRUE(std::is_sorted(nf4.begin(), nf4.end()));
  EXPECT_EQ(nf4[7], 0.0f);
  const auto& dyn = dynamic_code_book();
  EXPECT_TRUE(std::is_sorted(dyn.begin(), dyn.end()));
  EXPECT_EQ(dyn.back(), 1.0f);
  EXPECT_EQ(std::count(dyn.begin(), dyn.end(), 0.0f), 1);
  EXPECT_EQ(std::adjacent_find(dyn.begin(), dyn.end()), dyn.end());  // 256 distinct values
}

TEST(Quant, RoundTripErrorWithinHalfAStep) {
  torch::manual_seed(1);
  const torch::Tensor w = torch::randn({24, 256});
  {
    const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kInt8));
    const torch::Tensor err = (q.dequantize() - w).abs();
    EXPECT_TRUE((err <= q.scale.unsqueeze(1) * 0.5f + 1e-6f).all().item<bool>());
  }
  {
    const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kInt4, 64));
    EXPECT_EQ(q.scale.sizes(), (std::vector<int64_t>{24, 4}));
    const torch::Tensor err = (q.dequantize() - w).abs().view({24, 4, 64});
    EXPECT_TRUE((err <= q.scale.unsqueeze(2) * 0.5f + 1e-6f).all().item<bool>());
  }
  {
    // NF4: within half the widest gap of the code book times the block's absmax (double quantization off)
    const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kNf4, 64, false));
    const auto& book = nf4_code_book();
    float gap = 0;
    for (int k = 0; k < 15; ++k) gap = std::max(gap, book[k + 1] - book[k]);
    const torch::Tensor err = (q.dequantize() - w).abs().view({-1, 64});
    EXPECT_TRUE((err <= q.scale.view({-1, 1}) * (gap / 2) + 1e-6f).all().item<bool>());
  }
}

TEST(Quant, DoubleQuantizedAbsmaxIsCloseAndSmaller) {
  torch::manual_seed(2);
  const torch::Tensor w = torch::randn({64, 512});
  const QuantizedMatrix plain = quantize_matrix(w, opts(QuantScheme::kNf4, 64, false));
  const QuantizedMatrix dq = quantize_matrix(w, opts(QuantScheme::kNf4, 64, true));
  EXPECT_TRUE(torch::equal(plain.data, dq.data));  // the codes do not depend on how absmax is stored
  EXPECT_EQ(dq.absmax_code.numel(), 512);
  EXPECT_EQ(dq.absmax_scale.numel(), 2);
  EXPECT_LT((dq.scale - plain.scale).abs().max().item<float>(), 0.02f * plain.scale.abs().max().item<float>());
  EXPECT_LT(dq.storage_bytes(), plain.storage_bytes());
}

TEST(Quant, DequantizeRowsEqualsRowsOfDequantize) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({10, 128});
  const torch::Tensor ids = torch::tensor({3, 0, 9, 3}, torch::kLong).view({2, 2});
  for (QuantScheme s : {QuantScheme::kInt8, QuantScheme::kInt4, QuantScheme::kNf4}) {
    const QuantizedMatrix q = quantize_matrix(w, opts(s));
    const torch::Tensor rows = q.dequantize_rows(ids);
    EXPECT_EQ(rows.sizes(), (std::vector<int64_t>{2, 2, 128}));
    EXPECT_TRUE(torch::equal(rows.view({4, 128}), q.dequantize().index_select(0, ids.view({-1}))))
        << quant_scheme_name(s);
  }
}

TEST(Quant, DecodeKernelsEqualTheDequantizedProduct) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const torch::Tensor w = torch::randn({96, 256}) * 0.05;
  const torch::Tensor bias = torch::randn({96});
  const torch::Tensor x = torch::randn({1, 1, 256});
  for (QuantScheme s : {QuantScheme::kInt8, QuantScheme::kInt4, QuantScheme::kNf4}) {
    const QuantizedMatrix q = quantize_matrix(w, opts(s));
    const torch::Tensor ref = torch::linear(x, q.dequantize(), bias);
    const torch::Tensor y = quantized_linear(x, q, bias);  // one row: the kernel
    EXPECT_EQ(y.sizes(), ref.sizes());
    EXPECT_TRUE(torch::allclose(y, ref, 1e-4, 1e-5)) << quant_scheme_name(s) << " " << (y - ref).abs().max();
    // several rows: the dequantized matmul
    const torch::Tensor xs = torch::randn({3, 256});
    EXPECT_TRUE(torch::allclose(quantized_linear(xs, q, bias), torch::linear(xs, q.dequantize(), bias), 1e-5, 1e-5));
  }
}

TEST(Quant, DynamicInt8WithinOneActivationStep) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const torch::Tensor w = torch::randn({64, 128}) * 0.1;
  const torch::Tensor x = torch::randn({5, 128});
  const QuantizedMatrix q = quantize_matrix(w, opts(QuantScheme::kInt8Dynamic));
  const torch::Tensor y = quantized_linear(x, q, torch::Tensor());
  const torch::Tensor ref = torch::linear(x, q.dequantize());
  // |x - xq sx| <= sx / 2 per element, so the output moves by at most sum_c |W[r, c]| sx / 2
  const torch::Tensor sx = x.abs().amax(1, true) / 127.0;
  const torch::Tensor bound = sx * q.dequantize().abs().sum(1).unsqueeze(0) * 0.5 + 1e-5;
  EXPECT_TRUE(((y - ref).abs() <= bound).all().item<bool>());
}

TEST(Quant, ErrorsNameTheProblem) {
  EXPECT_THROW(quantize_matrix(torch::randn({4, 100}), opts(QuantScheme::kInt4, 64)), ConfigError);
  EXPECT_THROW(quantize_matrix(torch::randn({4, 96}), opts(QuantScheme::kNf4, 64)), ConfigError);
  EXPECT_THROW(parse_quant_scheme("int3"), ConfigError);
}

TEST(Quant, FakeQuantizeForwardIsQuantizedBackwardIsIdentity) {
  torch::manual_seed(6);
  const torch::Tensor w = torch::randn({8, 64}).requires_grad_(true);
  for (QuantScheme s : {QuantScheme::kInt8, QuantScheme::kInt4, QuantScheme::kNf4}) {
    const torch::Tensor fq = fake_quantize(w, opts(s, 32, false));
    EXPECT_TRUE(torch::equal(fq.detach(), quantize_matrix(w, opts(s, 32, false)).dequantize()));
    const torch::Tensor g = torch::randn({8, 64});
    w.mutable_grad() = torch::Tensor();
    (fq * g).sum().backward();
    EXPECT_TRUE(torch::equal(w.grad(), g)) << quant_scheme_name(s);
  }
}

GptConfig small_config() {
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 64;
  c.block_size = 32;
  c.vocab_size = 50;
  return c;
}

TEST(QuantGpt, Int8LogitsCloseAndGenerationUsesTheCache) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  Gpt ref(small_config());
  Gpt q(small_config());
  load_gpt_state(q, gpt_state(ref));
  GptQuantConfig qc;
  qc.options = opts(QuantScheme::kInt8);
  const auto layers = quantize_gpt(q, qc);
  EXPECT_EQ(layers.size(), 2u * 4u + 1u);  // 4 linears per block + the tied embedding
  EXPECT_EQ(layers.back(), "transformer.wte");
  for (auto& [name, layer] : q->linear_layers()) EXPECT_EQ(layer->weight.numel(), 0) << name;
  const torch::Tensor ids = torch::randint(0, 50, {2, 12});
  const torch::Tensor a = ref->forward(ids), b = q->forward(ids);
  EXPECT_LT((a - b).abs().max().item<double>(), 0.05 * a.abs().max().item<double>());
  // cached decoding (the kernels, one row) agrees with the full forward of the quantized model
  GenerationConfig g;
  g.max_new_tokens = 6;
  const std::vector<std::vector<int64_t>> prompt{{3, 1, 4, 1, 5}};
  const auto with_cache = generate(q, prompt, g);
  g.use_cache = false;
  const auto without = generate(q, prompt, g);
  EXPECT_EQ(with_cache.tokens, without.tokens);
  EXPECT_LT(gpt_weight_bytes(q), gpt_weight_bytes(ref) / 3);
}

TEST(QuantGpt, CheckpointAndDirectoryRoundTrip) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  for (QuantScheme s : {QuantScheme::kInt4, QuantScheme::kNf4, QuantScheme::kInt8Dynamic}) {
    Gpt q(small_config());
    GptQuantConfig qc;
    qc.options = opts(s);
    quantize_gpt(q, qc);
    const torch::Tensor ids = torch::randint(0, 50, {1, 9});
    const torch::Tensor expected = q->forward(ids);
    core::CheckpointState state;
    add_gpt_to_checkpoint(state, "model", q);
    Gpt back = gpt_from_checkpoint(state, "model");
    EXPECT_EQ(back->quant_config().options.scheme, s);
    EXPECT_TRUE(torch::equal(back->forward(ids), expected)) << quant_scheme_name(s);
    troupe::testing::ScratchDir dir("quant_dir");
    save_quantized_gpt(dir.path() / "q", q, "test");
    ASSERT_TRUE(is_quantized_gpt_dir(dir.path() / "q"));
    Gpt loaded = load_pretrained_gpt(dir.path() / "q");
    EXPECT_TRUE(torch::equal(loaded->forward(ids), expected)) << quant_scheme_name(s);
    EXPECT_THROW(load_pretrained_gpt(dir.path() / "q", GptHeads{true, false}), ConfigError);
  }
}

TEST(QuantGpt, QloraTrainsOnlyAdaptersAndLearns) {
  torch::manual_seed(9);
  Gpt model(small_config());
  GptQuantConfig qc;
  qc.options = opts(QuantScheme::kNf4);
  qc.embedding = false;
  quantize_gpt(model, qc);
  LoraConfig lora;
  lora.rank = 4;
  lora.targets = {"*"};
  apply_lora(model, lora);
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) {
      EXPECT_NE(p.key().find(".lora_"), std::string::npos) << p.key();
      trainable.push_back(p.value());
    }
  }
  ASSERT_FALSE(trainable.empty());
  torch::optim::Adam opt(trainable, torch::optim::AdamOptions(1e-2));
  const torch::Tensor ids = torch::randint(0, 50, {4, 16});
  const torch::Tensor targets = ids.roll(-1, 1);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    GptInput in;
    in.ids = ids;
    const torch::Tensor loss = model->lm_loss_sum(model->hidden(in), targets, -100) / ids.numel();
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, first * 0.8);
  // the adapters survive a checkpoint round trip with the quantized base
  torch::NoGradGuard no_grad;
  core::CheckpointState state;
  add_gpt_to_checkpoint(state, "model", model);
  Gpt back = gpt_from_checkpoint(state, "model");
  EXPECT_TRUE(torch::equal(back->forward(ids), model->forward(ids)));
  // exported merged (dequantized base + adapters, fp32): the same function up to float rounding
  Gpt merged(small_config());
  load_gpt_trunk_parameters(merged, gpt_trunk_parameters(model), "qlora");
  EXPECT_TRUE(torch::allclose(merged->forward(ids), model->forward(ids), 1e-4, 1e-4));
  EXPECT_THROW(merge_lora(model), Error);
}

TEST(QuantGpt, QatForwardEqualsTheConvertedModelAndSurvivesACheckpoint) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(10);
  Gpt model(small_config());
  const auto layers = enable_fake_quant(model, QuantScheme::kInt4, 32, {"transformer.*"});
  EXPECT_EQ(layers.size(), 8u);
  EXPECT_TRUE(model->quant_config().fake);
  const torch::Tensor ids = torch::randint(0, 50, {2, 10});
  const torch::Tensor fake = model->forward(ids);
  // the checkpoint records QAT: the model comes back fake-quantized, through load_pretrained_gpt's path too
  core::CheckpointState state;
  add_gpt_to_checkpoint(state, "model", model);
  Gpt back = gpt_from_checkpoint(state, "model");
  EXPECT_TRUE(back->quant_config().fake);
  EXPECT_TRUE(torch::equal(back->forward(ids), fake));
  // conversion: the same int4 weights, now stored as codes
  GptQuantConfig qc;
  qc.options = opts(QuantScheme::kInt4, 32);
  qc.targets = {"transformer.*"};
  qc.embedding = false;
  quantize_gpt(model, qc);
  EXPECT_FALSE(model->quant_config().fake);
  EXPECT_TRUE(torch::allclose(model->forward(ids), fake, 1e-5, 1e-5));
}

}  // namespace
}  // namespace troupe::models
