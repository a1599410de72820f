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

bool is_bf16(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; }

void check_float(const at::Tensor& t, const char* what) {
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kBFloat16) {
    throw ConfigError(std::string(what) + ": expected fp32 or bf16, got " + std::string(c10::toString(t.scalar_type())));
  }
}

// Turns autocast off inside a kernel, so the matmuls run in exactly the dtypes chosen here.
class NoAutocast {
 public:
  NoAutocast() : was_(at::autocast::is_cpu_enabled()) { at::autocast::set_cpu_enabled(false); }
  ~NoAutocast() { at::autocast::set_cpu_enabled(was_); }
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

// ---- LM head + cross-entropy ---------------------------------------------------------------------------------

struct LinearCrossEntropyFn : torch::autograd::Function<LinearCrossEntropyFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t ignore_index, bool bf16, bool want_grad,
                            int64_t chunk_logits) {
    NoAutocast no_autocast;
    const int64_t N = hidden.size(0), V = weight.size(0);
    const auto mm_type = bf16 ? at::kBFloat16 : at::kFloat;
    const at::Tensor w = weight.to(mm_type).contiguous();   // [V, C]
    const at::Tensor h = hidden.to(mm_type).contiguous();   // [N, C]
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
            if (want_grad) std::memset(static_cast<char*>(logits.data_ptr()) + (r - r0) * V * logits.element_size(), 0,
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
    return {ctx->saved_data["dh"].toTensor() * g, ctx->saved_data["dw"].toTensor() * g, at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
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
    throw ConfigError("masked_softmax: scores must be [B, H, T, S] and keep bool [1 or B, 1, T, S] with unit stride "
                      "along S; got " +
                      c10::str(scores.sizes()) + " and " + c10::str(keep.sizes()));
  }
  return MaskedSoftmaxFn::apply(scores.contiguous(), keep);
}

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    int64_t ignore_index, bool bf16, int64_t chunk_logits) {
  check_float(hidden, "linear_cross_entropy_sum hidden");
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1 || hidden.size(1) != weight.size(1) ||
      targets.size(0) != hidden.size(0)) {
    throw ConfigError("linear_cross_entropy_sum: hidden must be [N, C], weight [V, C] and targets [N]; got " +
                      c10::str(hidden.sizes()) + ", " + c10::str(weight.sizes()) + " and " +
                      c10::str(targets.sizes()));
  }
  const bool want_grad = at::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  return LinearCrossEntropyFn::apply(hidden, weight, targets, ignore_index, bf16, want_grad, chunk_logits);
}

}  // namespace troupe::models::kernels
