// Implementation of models/kernels.h. The loops are plain C++ written so that GCC vectorises them (branch-free
// selects, an inline exp, bf16 as uint16 bit patterns); each hot loop is compiled for AVX-512, AVX2 and baseline
// x86-64 (target_clones, picked once at load time), and this file is built with -O3 -ffast-math (see
// models/CMakeLists.txt), so NaN tests below look at bits, not at comparisons.
#include "models/kernels.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/errors.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TROUPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TROUPE_CLONES
#endif
#define TROUPE_INLINE inline __attribute__((always_inline))

namespace troupe::models::kernels {

namespace {

using bf16_t = uint16_t;  // bit pattern of at::BFloat16

TROUPE_INLINE float load(float v) { return v; }
TROUPE_INLINE float load(bf16_t v) {
  const uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
template <class T>
TROUPE_INLINE T store(float f);
template <>
TROUPE_INLINE float store<float>(float f) {
  return f;
}
// Round to nearest even, as ATen does; NaN stays NaN (tested on the bits: this file is built with -ffast-math).
template <>
TROUPE_INLINE bf16_t store<bf16_t>(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<bf16_t>(nan ? 0x7fc0u : rounded);
}

// exp(x) to about 2 ulp for x in [-87, 88] (Cephes' expf: x = n ln2 + r, degree-6 polynomial in r); 0 below -87
// (so a -1e30 mask gives exactly 0, as expf does), clamped above 88.
TROUPE_INLINE float exp_approx(float x) {
  const bool underflow = x < -87.0f;
  x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return underflow ? 0.0f : p * scale;
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCoeff = 0.044715f;
constexpr float kMasked = -1e30f;  // what models/gpt.cpp's masked_fill uses

// GELU(tanh) is x sigmoid(2u) with u = sqrt(2/pi) (x + 0.044715 x^3), since (1 + tanh u) / 2 = sigmoid(2u).
// With f = exp(-2u): sigmoid(2u) = 1 / (1 + f) and 1 - sigmoid(2u) = f sigmoid(2u), so neither the value nor the
// derivative subtracts nearly equal numbers. 2u is clamped to [-40, 40] (sigmoid is 0 or 1 in fp32 well before),
// which keeps every product finite under -ffast-math's reassociation.
TROUPE_INLINE float gelu_exp_neg_2u(float v) {
  float two_u = 2.0f * kSqrt2OverPi * (v + kGeluCoeff * v * v * v);
  two_u = two_u > 40.0f ? 40.0f : (two_u < -40.0f ? -40.0f : two_u);
  return exp_approx(-two_u);
}

template <class T>
TROUPE_INLINE void gelu_forward_loop(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(x[i]);
    y[i] = store<T>(v / (1.0f + gelu_exp_neg_2u(v)));
  }
}

// d/dx [x sigmoid(2u)] = sigmoid(2u) + 2 x sigmoid(2u) (1 - sigmoid(2u)) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
template <class T>
TROUPE_INLINE void gelu_backward_loop(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(x[i]);
    const float f = gelu_exp_neg_2u(v);
    const float sig = 1.0f / (1.0f + f);
    const float d = sig + 2.0f * v * (f * sig * sig) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCoeff * v * v);
    dx[i] = store<T>(load(dy[i]) * d);
  }
}

TROUPE_CLONES void gelu_forward_f32(const float* x, float* y, int64_t n) { gelu_forward_loop(x, y, n); }
TROUPE_CLONES void gelu_forward_bf16(const bf16_t* x, bf16_t* y, int64_t n) { gelu_forward_loop(x, y, n); }
TROUPE_CLONES void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  gelu_backward_loop(x, dy, dx, n);
}
TROUPE_CLONES void gelu_backward_bf16(const bf16_t* x, const bf16_t* dy, bf16_t* dx, int64_t n) {
  gelu_backward_loop(x, dy, dx, n);
}

// One softmax row of S scores; keep[s] != 0 where the score stands. scratch: S floats.
template <class T>
TROUPE_INLINE void softmax_row(const T* x, const uint8_t* keep, T* out, float* scratch, int64_t S) {
  float m = kMasked;
  for (int64_t s = 0; s < S; ++s) {
    const float v = keep[s] ? load(x[s]) : kMasked;
    scratch[s] = v;
    m = v > m ? v : m;
  }
  float sum = 0.0f;
  for (int64_t s = 0; s < S; ++s) {
    const float e = exp_approx(scratch[s] - m);
    scratch[s] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (int64_t s = 0; s < S; ++s) out[s] = store<T>(scratch[s] * inv);
}

// Masked scores get no gradient (masked_fill's backward), which matters only for fully masked rows: their p is
// uniform, not 0.
template <class T>
TROUPE_INLINE void softmax_backward_row(const T* p, const T* dy, const uint8_t* keep, T* dx, int64_t S) {
  float dot = 0.0f;
  for (int64_t s = 0; s < S; ++s) dot += load(p[s]) * load(dy[s]);
  for (int64_t s = 0; s < S; ++s) dx[s] = store<T>(keep[s] ? load(p[s]) * (load(dy[s]) - dot) : 0.0f);
}

TROUPE_CLONES void softmax_row_f32(const float* x, const uint8_t* keep, float* out, float* scratch, int64_t S) {
  softmax_row(x, keep, out, scratch, S);
}
TROUPE_CLONES void softmax_row_bf16(const bf16_t* x, const uint8_t* keep, bf16_t* out, float* scratch, int64_t S) {
  softmax_row(x, keep, out, scratch, S);
}
TROUPE_CLONES void softmax_backward_row_f32(const float* p, const float* dy, const uint8_t* keep, float* dx,
                                            int64_t S) {
  softmax_backward_row(p, dy, keep, dx, S);
}
TROUPE_CLONES void softmax_backward_row_bf16(const bf16_t* p, const bf16_t* dy, const uint8_t* keep, bf16_t* dx,
                                             int64_t S) {
  softmax_backward_row(p, dy, keep, dx, S);
}

// One row of V logits with its target: returns logsumexp - logit[target]; with `grad`, overwrites the row with
// softmax - onehot(target). scratch: V floats.
template <class T>
TROUPE_INLINE float cross_entropy_row(T* logits, int64_t target, bool grad, float* scratch, int64_t V) {
  float m = -3.0e38f;
  for (int64_t v = 0; v < V; ++v) {
    const float l = load(logits[v]);
    scratch[v] = l;
    m = l > m ? l : m;
  }
  float sum = 0.0f;
  for (int64_t v = 0; v < V; ++v) {
    const float e = exp_approx(scratch[v] - m);
    sum += e;
    scratch[v] = e;
  }
  const float picked = load(logits[target]);
  const float loss = m + std::log(sum) - picked;
  if (grad) {
    const float inv = 1.0f / sum;
    for (int64_t v = 0; v < V; ++v) logits[v] = store<T>(scratch[v] * inv);
    logits[target] = store<T>(scratch[target] * inv - 1.0f);
  }
  return loss;
}

TROUPE_CLONES float cross_entropy_row_f32(float* logits, int64_t target, bool grad, float* scratch, int64_t V) {
  return cross_entropy_row(logits, target, grad, scratch, V);
}
TROUPE_CLONES float cross_entropy_row_bf16(bf16_t* logits, int64_t target, bool grad, float* scratch, int64_t V) {
  return cross_entropy_row(logits, target, grad, scratch, V);
}

// ---- LayerNorm rows: x [C] -> y [C], fp32 statistics ----

template <class Tx, class Ty>
TROUPE_INLINE void layer_norm_row(const Tx* x, const float* w, const float* b, float eps, Ty* y, float* mean_out,
                                  float* rstd_out, int64_t C) {
  float sum = 0.0f;
  for (int64_t c = 0; c < C; ++c) sum += load(x[c]);
  const float mean = sum / static_cast<float>(C);
  float sq = 0.0f;
  for (int64_t c = 0; c < C; ++c) {
    const float d = load(x[c]) - mean;
    sq += d * d;
  }
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
  if (b != nullptr) {
    for (int64_t c = 0; c < C; ++c) y[c] = store<Ty>((load(x[c]) - mean) * rstd * w[c] + b[c]);
  } else {
    for (int64_t c = 0; c < C; ++c) y[c] = store<Ty>((load(x[c]) - mean) * rstd * w[c]);
  }
  *mean_out = mean;
  *rstd_out = rstd;
}

// dx = rstd (dy w - mean(dy w) - xhat mean(dy w xhat)); adds dy xhat to dw_acc and dy to db_acc.
template <class Tx, class Ty>
TROUPE_INLINE void layer_norm_backward_row(const Tx* x, const Ty* dy, const float* w, float mean, float rstd, Tx* dx,
                                           float* dw_acc, float* db_acc, int64_t C) {
  float a = 0.0f, bsum = 0.0f;
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = (load(x[c]) - mean) * rstd;
    const float g = load(dy[c]);
    const float dxh = g * w[c];
    a += dxh;
    bsum += dxh * xhat;
    dw_acc[c] += g * xhat;
    db_acc[c] += g;
  }
  a /= static_cast<float>(C);
  bsum /= static_cast<float>(C);
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = (load(x[c]) - mean) * rstd;
    dx[c] = store<Tx>(rstd * (load(dy[c]) * w[c] - a - xhat * bsum));
  }
}

#define TROUPE_LN_VARIANT(NAME, TX, TY)                                                                                \
  TROUPE_CLONES void layer_norm_row_##NAME(const TX* x, const float* w, const float* b, float eps, TY* y, float* mean, \
                                           float* rstd, int64_t C) {                                                   \
    layer_norm_row(x, w, b, eps, y, mean, rstd, C);                                                                    \
  }                                                                                                                    \
  TROUPE_CLONES void layer_norm_backward_row_##NAME(const TX* x, const TY* dy, const float* w, float mean, float rstd, \
                                                    TX* dx, float* dw_acc, float* db_acc, int64_t C) {                 \
    layer_norm_backward_row(x, dy, w, mean, rstd, dx, dw_acc, db_acc, C);                                              \
  }
TROUPE_LN_VARIANT(f32_f32, float, float)
TROUPE_LN_VARIANT(f32_bf16, float, bf16_t)
TROUPE_LN_VARIANT(bf16_bf16, bf16_t, bf16_t)
#undef TROUPE_LN_VARIANT

// ---- conversions and column sums ----

TROUPE_CLONES void f32_to_bf16(const float* in, bf16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = store<bf16_t>(in[i]);
}
TROUPE_CLONES void bf16_to_f32(const bf16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = load(in[i]);
}
// out[c] = sum over r of x[r][c] for c in [c0, c1), rows in order.
TROUPE_CLONES void column_sums_bf16(const bf16_t* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, float* out) {
  for (int64_t c = c0; c < c1; ++c) out[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const bf16_t* row = x + r * cols;
    for (int64_t c = c0; c < c1; ++c) out[c] += load(row[c]);
  }
}

// ---- AdamW ----

TROUPE_CLONES void adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, float decay, float b1, float b2,
                             float inv_sqrt_bc2, float eps, float step_size) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * b1 + gi * (1.0f - b1);
    const float vi = v[i] * b2 + gi * gi * (1.0f - b2);
    m[i] = mi;
    v[i] = vi;
    // -ffast-math computes sqrt as x·rsqrt(x), which is NaN for a denormal x (a gradient below ~1e-19): flush those
    // to 0 first (sqrt of a denormal is < 1e-19, invisible next to eps anyway).
    const float vs = vi < std::numeric_limits<float>::min() ? 0.0f : vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vs) * inv_sqrt_bc2 + eps);
  }
}

bool is_bf16(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; }

void check_float(const at::Tensor& t, const char* what) {
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kBFloat16) {
    throw ConfigError(std::string(what) + ": expected fp32 or bf16, got " +
                      std::string(c10::toString(t.scalar_type())));
  }
}

// Turns autocast off inside a kernel, so the matmuls run in exactly the dtypes chosen here.
class NoAutocast {
 public:
  NoAutocast() : was_(at::autocast::is_autocast_enabled(at::kCPU)) {
    at::autocast::set_autocast_enabled(at::kCPU, false);
  }
  ~NoAutocast() { at::autocast::set_autocast_enabled(at::kCPU, was_); }
  NoAutocast(const NoAutocast&) = delete;
  NoAutocast& operator=(const NoAutocast&) = delete;

 private:
  bool was_;
};

constexpr int64_t kElementGrain = 1 << 14;

// ---- GELU ----------------------------------------------------------------------------------------------------

at::Tensor gelu_forward_impl(const at::Tensor& x) {
  at::Tensor y = at::empty_like(x);
  const int64_t n = x.numel();
  at::parallel_for(0, n, kElementGrain, [&](int64_t b, int64_t e) {
    if (is_bf16(x)) {
      gelu_forward_bf16(static_cast<const bf16_t*>(x.data_ptr()) + b, static_cast<bf16_t*>(y.data_ptr()) + b, e - b);
    } else {
      gelu_forward_f32(x.data_ptr<float>() + b, y.data_ptr<float>() + b, e - b);
    }
  });
  return y;
}

at::Tensor gelu_backward_impl(const at::Tensor& x, const at::Tensor& dy_in) {
  const at::Tensor dy = dy_in.to(x.scalar_type()).contiguous();
  at::Tensor dx = at::empty_like(x);
  at::parallel_for(0, x.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    if (is_bf16(x)) {
      gelu_backward_bf16(static_cast<const bf16_t*>(x.data_ptr()) + b, static_cast<const bf16_t*>(dy.data_ptr()) + b,
                         static_cast<bf16_t*>(dx.data_ptr()) + b, e - b);
    } else {
      gelu_backward_f32(x.data_ptr<float>() + b, dy.data_ptr<float>() + b, dx.data_ptr<float>() + b, e - b);
    }
  });
  return dx;
}

struct GeluFn : torch::autograd::Function<GeluFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return gelu_forward_impl(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    return {gelu_backward_impl(ctx->get_saved_variables()[0], grad[0])};
  }
};

// ---- masked softmax ------------------------------------------------------------------------------------------

// Row r of [B, H, T, S] is (b, h, t) = (r / (H T), (r / T) % H, r % T); its keep row is keep[b or 0][0][t].
struct KeepRows {
  KeepRows(const at::Tensor& keep, int64_t H, int64_t T)
      : base(static_cast<const uint8_t*>(keep.data_ptr())),
        stride_b(keep.size(0) == 1 ? 0 : keep.stride(0)),
        stride_t(keep.stride(2)),
        HT(H * T),
        T(T) {}
  const uint8_t* row(int64_t r) const { return base + (r / HT) * stride_b + (r % T) * stride_t; }
  const uint8_t* base;
  int64_t stride_b, stride_t, HT, T;
};

at::Tensor softmax_forward_impl(const at::Tensor& x, const at::Tensor& keep) {
  const int64_t H = x.size(1), T = x.size(2), S = x.size(3);
  at::Tensor out = at::empty_like(x);
  const KeepRows rows(keep, H, T);
  at::parallel_for(0, x.numel() / S, std::max<int64_t>(1, kElementGrain / S), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(S));
    for (int64_t r = begin; r < end; ++r) {
      if (is_bf16(x)) {
        softmax_row_bf16(static_cast<const bf16_t*>(x.data_ptr()) + r * S, rows.row(r),
                         static_cast<bf16_t*>(out.data_ptr()) + r * S, scratch.data(), S);
      } else {
        softmax_row_f32(x.data_ptr<float>() + r * S, rows.row(r), out.data_ptr<float>() + r * S, scratch.data(), S);
      }
    }
  });
  return out;
}

at::Tensor softmax_backward_impl(const at::Tensor& p, const at::Tensor& keep, const at::Tensor& dy_in) {
  const at::Tensor dy = dy_in.to(p.scalar_type()).contiguous();
  const int64_t H = p.size(1), T = p.size(2), S = p.size(3);
  const KeepRows rows(keep, H, T);
  at::Tensor dx = at::empty_like(p);
  at::parallel_for(0, p.numel() / S, std::max<int64_t>(1, kElementGrain / S), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (is_bf16(p)) {
        softmax_backward_row_bf16(static_cast<const bf16_t*>(p.data_ptr()) + r * S,
                                  static_cast<const bf16_t*>(dy.data_ptr()) + r * S, rows.row(r),
                                  static_cast<bf16_t*>(dx.data_ptr()) + r * S, S);
      } else {
        softmax_backward_row_f32(p.data_ptr<float>() + r * S, dy.data_ptr<float>() + r * S, rows.row(r),
                                 dx.data_ptr<float>() + r * S, S);
      }
    }
  });
  return dx;
}

struct MaskedSoftmaxFn : torch::autograd::Function<MaskedSoftmaxFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& keep) {
    at::Tensor p = softmax_forward_impl(x, keep);
    ctx->save_for_backward({p, keep});
    return p;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {softmax_backward_impl(saved[0], saved[1], grad[0]), at::Tensor()};
  }
};

// ---- LayerNorm ----

// Rows are summed for dweight/dbias in fixed blocks of kLnBlock, then the blocks in order: the same bits for any
// thread count.
constexpr int64_t kLnBlock = 32;

template <class T>
T* ptr(const at::Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

struct LayerNormFn : torch::autograd::Function<LayerNormFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, double eps, at::ScalarType out_type) {
    const int64_t C = x.size(-1), N = x.numel() / C;
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(out_type));
    at::Tensor mean = at::empty({N}, x.options().dtype(at::kFloat)), rstd = at::empty({N}, mean.options());
    const float* w = weight.data_ptr<float>();
    const float* b = bias.numel() > 0 ? bias.data_ptr<float>() : nullptr;
    const bool xb = is_bf16(x), yb = out_type == at::kBFloat16;
    at::parallel_for(0, N, std::max<int64_t>(1, kElementGrain / C), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float* mo = mean.data_ptr<float>() + r;
        float* ro = rstd.data_ptr<float>() + r;
        if (!xb && !yb) {
          layer_norm_row_f32_f32(ptr<float>(x) + r * C, w, b, static_cast<float>(eps), ptr<float>(y) + r * C, mo, ro,
                                 C);
        } else if (!xb) {
          layer_norm_row_f32_bf16(ptr<float>(x) + r * C, w, b, static_cast<float>(eps), ptr<bf16_t>(y) + r * C, mo, ro,
                                  C);
        } else {
          layer_norm_row_bf16_bf16(ptr<bf16_t>(x) + r * C, w, b, static_cast<float>(eps), ptr<bf16_t>(y) + r * C, mo,
                                   ro, C);
        }
      }
    });
    ctx->save_for_backward({x, weight, mean, rstd});
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &rstd = saved[3];
    const int64_t C = x.size(-1), N = x.numel() / C, blocks = (N + kLnBlock - 1) / kLnBlock;
    const bool xb = is_bf16(x);
    // dy arrives in the output's dtype; a bf16 output over a bf16 input and fp32 over fp32 need no other case.
    const bool yb = grad[0].scalar_type() == at::kBFloat16;
    const at::Tensor dy = grad[0].contiguous();
    if (xb && !yb) throw Error("layer_norm backward: fp32 gradient for a bf16 input");
    at::Tensor dx = at::empty_like(x);
    at::Tensor partial = at::zeros({blocks, 2, C}, x.options().dtype(at::kFloat));  // [block, dw | db, C]
    const float* w = weight.data_ptr<float>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        float* dw_acc = partial.data_ptr<float>() + k * 2 * C;
        float* db_acc = dw_acc + C;
        for (int64_t r = k * kLnBlock; r < std::min(N, (k + 1) * kLnBlock); ++r) {
          const float m = mean.data_ptr<float>()[r], rs = rstd.data_ptr<float>()[r];
          if (!xb && !yb) {
            layer_norm_backward_row_f32_f32(ptr<float>(x) + r * C, ptr<float>(dy) + r * C, w, m, rs,
                                            ptr<float>(dx) + r * C, dw_acc, db_acc, C);
          } else if (!xb) {
            layer_norm_backward_row_f32_bf16(ptr<float>(x) + r * C, ptr<bf16_t>(dy) + r * C, w, m, rs,
                                             ptr<float>(dx) + r * C, dw_acc, db_acc, C);
          } else {
            layer_norm_backward_row_bf16_bf16(ptr<bf16_t>(x) + r * C, ptr<bf16_t>(dy) + r * C, w, m, rs,
                                              ptr<bf16_t>(dx) + r * C, dw_acc, db_acc, C);
          }
        }
      }
    });
    at::Tensor sums = at::zeros({2, C}, partial.options());
    float* out = sums.data_ptr<float>();
    const float* part = partial.data_ptr<float>();
    for (int64_t k = 0; k < blocks; ++k) {  // in block order
      for (int64_t i = 0; i < 2 * C; ++i) out[i] += part[k * 2 * C + i];
    }
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    return {dx, sums[0], has_bias ? sums[1] : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// ---- bf16 linear ----

at::Tensor convert(const at::Tensor& in, at::ScalarType to) {
  const at::Tensor x = in.contiguous();
  if (x.scalar_type() == to) return x;
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(to));
  at::parallel_for(0, x.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    if (to == at::kBFloat16) {
      f32_to_bf16(ptr<float>(x) + b, ptr<bf16_t>(out) + b, e - b);
    } else {
      bf16_to_f32(ptr<bf16_t>(x) + b, ptr<float>(out) + b, e - b);
    }
  });
  return out;
}

struct LinearBf16Fn : torch::autograd::Function<LinearBf16Fn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias) {
    NoAutocast no_autocast;
    const int64_t in = weight.size(1), out = weight.size(0);
    const at::Tensor xb = convert(x, at::kBFloat16).view({-1, in});  // [N, in]
    const at::Tensor wb = convert(weight, at::kBFloat16);            // [out, in]
    at::Tensor y = bias.numel() > 0 ? at::addmm(convert(bias, at::kBFloat16), xb, wb.t()) : at::mm(xb, wb.t());
    ctx->save_for_backward({xb, wb});
    ctx->saved_data["x_bf16"] = x.scalar_type() == at::kBFloat16;
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out;
    return y.view(shape);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &xb = saved[0], &wb = saved[1];
    const int64_t out = wb.size(0);
    const at::Tensor dy = convert(grad[0], at::kBFloat16).view({-1, out});  // [N, out]
    at::Tensor dx = at::mm(dy, wb);                                         // [N, in] bf16
    if (!ctx->saved_data["x_bf16"].toBool()) dx = convert(dx, at::kFloat);
    std::vector<int64_t> shape = grad[0].sizes().vec();
    shape.back() = wb.size(1);
    const at::Tensor dw = convert(at::mm(dy.t(), xb), at::kFloat);  // [out, in]
    at::Tensor db;
    if (ctx->saved_data["has_bias"].toBool()) {
      db = at::empty({out}, dw.options());
      const int64_t rows = dy.size(0);
      at::parallel_for(0, out, 256, [&](int64_t c0, int64_t c1) {
        column_sums_bf16(ptr<bf16_t>(dy), rows, out, c0, c1, db.data_ptr<float>());
      });
    }
    return {dx.view(shape), dw, db};
  }
};

// ---- LM head + cross-entropy ---------------------------------------------------------------------------------

struct LinearCrossEntropyFn : torch::autograd::Function<LinearCrossEntropyFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t ignore_index, bool bf16, bool want_grad,
                            int64_t chunk_logits) {
    NoAutocast no_autocast;
    const int64_t N = hidden.size(0), V = weight.size(0);
    const auto mm_type = bf16 ? at::kBFloat16 : at::kFloat;
    const at::Tensor w = weight.to(mm_type).contiguous();  // [V, C]
    const at::Tensor h = hidden.to(mm_type).contiguous();  // [N, C]
    const at::Tensor tgt = targets.to(at::kLong).contiguous();
    const int64_t* tp = tgt.data_ptr<int64_t>();
    for (int64_t n = 0; n < N; ++n) {
      if (tp[n] != ignore_index && (tp[n] < 0 || tp[n] >= V)) {
        throw DataError("cross-entropy target " + std::to_string(tp[n]) + " at row " + std::to_string(n) +
                        " is outside the vocabulary [0, " + std::to_string(V) + ")");
      }
    }
    at::Tensor dh, dw;
    if (want_grad) {
      dh = at::empty({N, hidden.size(1)}, hidden.options().dtype(at::kFloat));
      dw = at::zeros_like(weight, weight.options().dtype(at::kFloat));
    }
    std::vector<float> row_loss(static_cast<size_t>(N), 0.0f);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(N, chunk_logits / V));
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk);
      const at::Tensor hc = h.slice(0, r0, r1);
      at::Tensor logits = at::mm(hc, w.t()).contiguous();  // [n, V]; becomes dloss/dlogits in place
      at::parallel_for(r0, r1, std::max<int64_t>(1, kElementGrain / V), [&](int64_t begin, int64_t end) {
        std::vector<float> scratch(static_cast<size_t>(V));
        for (int64_t r = begin; r < end; ++r) {
          if (tp[r] == ignore_index) {
            if (want_grad)
              std::memset(static_cast<char*>(logits.data_ptr()) + (r - r0) * V * logits.element_size(), 0,
                          static_cast<size_t>(V * logits.element_size()));
            continue;
          }
          if (bf16) {
            row_loss[r] = cross_entropy_row_bf16(static_cast<bf16_t*>(logits.data_ptr()) + (r - r0) * V, tp[r],
                                                 want_grad, scratch.data(), V);
          } else {
            row_loss[r] =
                cross_entropy_row_f32(logits.data_ptr<float>() + (r - r0) * V, tp[r], want_grad, scratch.data(), V);
          }
        }
      });
      if (want_grad) {
        dh.slice(0, r0, r1).copy_(at::mm(logits, w));  // [n, V] x [V, C]
        dw.add_(at::mm(logits.t(), hc));               // [V, n] x [n, C]
      }
    }
    double total = 0;  // fixed order: the same sum for any thread count
    for (float l : row_loss) total += l;
    if (want_grad) {
      ctx->saved_data["dh"] = dh.to(hidden.scalar_type());
      ctx->saved_data["dw"] = dw;
    }
    return at::scalar_tensor(total, hidden.options().dtype(at::kFloat));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    if (!ctx->saved_data.count("dh")) throw Error("linear_cross_entropy_sum: backward without saved gradients");
    const at::Tensor g = grad[0];
    return {ctx->saved_data["dh"].toTensor() * g,
            ctx->saved_data["dw"].toTensor() * g,
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor gelu_tanh(const at::Tensor& x) {
  check_float(x, "gelu_tanh");
  return GeluFn::apply(x.contiguous());
}

at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& keep) {
  check_float(scores, "masked_softmax");
  if (scores.dim() != 4 || keep.dim() != 4 || keep.scalar_type() != at::kBool || keep.size(1) != 1 ||
      (keep.size(0) != 1 && keep.size(0) != scores.size(0)) || keep.size(2) != scores.size(2) ||
      keep.size(3) != scores.size(3) || keep.stride(3) != 1) {
    throw ConfigError(
        "masked_softmax: scores must be [B, H, T, S] and keep bool [1 or B, 1, T, S] with unit stride "
        "along S; got " +
        c10::str(scores.sizes()) + " and " + c10::str(keep.sizes()));
  }
  return MaskedSoftmaxFn::apply(scores.contiguous(), keep);
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                      at::ScalarType out) {
  check_float(x, "layer_norm");
  const int64_t C = x.size(-1);
  const bool ok_params =
      weight.scalar_type() == at::kFloat && weight.dim() == 1 && weight.size(0) == C && weight.is_contiguous() &&
      (!bias.defined() ||
       (bias.scalar_type() == at::kFloat && bias.dim() == 1 && bias.size(0) == C && bias.is_contiguous()));
  const bool ok_out = out == at::kFloat ? !is_bf16(x) : out == at::kBFloat16;
  if (!ok_params || !ok_out) {
    throw ConfigError(
        "layer_norm: needs fp32 weight/bias [C] and an output dtype of fp32 (for fp32 input) or bf16; "
        "got input " +
        c10::str(x.sizes()) + " " + std::string(c10::toString(x.scalar_type())) + ", output " +
        std::string(c10::toString(out)));
  }
  // A custom Function cannot take an undefined tensor (1.13): no bias travels as an empty one.
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, weight.options());
  return LayerNormFn::apply(x.contiguous(), weight, b, eps, out);
}

at::Tensor linear_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  check_float(x, "linear_bf16");
  if (weight.scalar_type() != at::kFloat || weight.dim() != 2 || x.size(-1) != weight.size(1) ||
      (bias.defined() && (bias.scalar_type() != at::kFloat || bias.numel() != weight.size(0)))) {
    throw ConfigError("linear_bf16: needs x [..., in], an fp32 weight [out, in] and an fp32 bias [out]; got " +
                      c10::str(x.sizes()) + " and " + c10::str(weight.sizes()));
  }
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, weight.options());  // see layer_norm
  return LinearBf16Fn::apply(x, weight, b);
}

void adamw_update(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                  const at::Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay,
                  int64_t step) {
  for (const at::Tensor* t : {&param, &grad, &exp_avg, &exp_avg_sq}) {
    if (t->scalar_type() != at::kFloat || !t->is_contiguous() || t->numel() != param.numel()) {
      throw ConfigError("adamw_update: parameter, gradient and both moments must be contiguous fp32 of one size");
    }
  }
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const auto decay = static_cast<float>(1.0 - lr * weight_decay);
  const auto inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const auto step_size = static_cast<float>(lr / bc1);
  at::parallel_for(0, param.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    adamw_f32(ptr<float>(param) + b, ptr<float>(grad) + b, ptr<float>(exp_avg) + b, ptr<float>(exp_avg_sq) + b, e - b,
              decay, static_cast<float>(beta1), static_cast<float>(beta2), inv_sqrt_bc2, static_cast<float>(eps),
              step_size);
  });
}

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    int64_t ignore_index, bool bf16, int64_t chunk_logits) {
  check_float(hidden, "linear_cross_entropy_sum hidden");
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1 || hidden.size(1) != weight.size(1) ||
      targets.size(0) != hidden.size(0)) {
    throw ConfigError("linear_cross_entropy_sum: hidden must be [N, C], weight [V, C] and targets [N]; got " +
                      c10::str(hidden.sizes()) + ", " + c10::str(weight.sizes()) + " and " + c10::str(targets.sizes()));
  }
  const bool want_grad = at::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  return LinearCrossEntropyFn::apply(hidden, weight, targets, ignore_index, bf16, want_grad, chunk_logits);
}

}  // namespace troupe::models::kernels
