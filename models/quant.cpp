// Implementation of models/quant.h. The NF4 and dynamic-map functions follow bitsandbytes 0.50 step by step
// (backends/default/ops.py quantize_4bit, csrc/common.cpp quantize_block, functional.py create_dynamic_map), in
// fp32 with the same operations, so codes and scales come out bit-equal (tests/models/quant_bnb_test.py).
#include "models/quant.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/errors.h"
#include "models/quant_kernels.h"

namespace troupe::models {

QuantScheme parse_quant_scheme(const std::string& name) {
  if (name == "none") return QuantScheme::kNone;
  if (name == "int8") return QuantScheme::kInt8;
  if (name == "int4") return QuantScheme::kInt4;
  if (name == "nf4") return QuantScheme::kNf4;
  if (name == "int8_dynamic") return QuantScheme::kInt8Dynamic;
  throw ConfigError("unknown quantization '" + name + "' (expected none, int8, int4, nf4 or int8_dynamic)");
}

std::string quant_scheme_name(QuantScheme scheme) {
  switch (scheme) {
    case QuantScheme::kNone: return "none";
    case QuantScheme::kInt8: return "int8";
    case QuantScheme::kInt4: return "int4";
    case QuantScheme::kNf4: return "nf4";
    case QuantScheme::kInt8Dynamic: return "int8_dynamic";
  }
  return "none";
}

const std::array<float, 16>& nf4_code_book() {
  static const std::array<float, 16> book = {-1.0f,
                                             -0.6961928009986877f,
                                             -0.5250730514526367f,
                                             -0.39491748809814453f,
                                             -0.28444138169288635f,
                                             -0.18477343022823334f,
                                             -0.09105003625154495f,
                                             0.0f,
                                             0.07958029955625534f,
                                             0.16093020141124725f,
                                             0.24611230194568634f,
                                             0.33791524171829224f,
                                             0.44070982933044434f,
                                             0.5626170039176941f,
                                             0.7229568362236023f,
                                             1.0f};
  return book;
}

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) with the same fp32 tensor arithmetic:
// for exponent i the means of linspace(0.1, 1, 2^i + 1) times 10^(i - 6), both signs; then 0 and 1; sorted.
const std::array<float, 256>& dynamic_code_book() {
  static const std::array<float, 256> book = [] {
    std::vector<double> data;
    for (int i = 0; i < 7; ++i) {
      const int64_t items = (int64_t{1} << i) + 1;
      const torch::Tensor b = torch::linspace(0.1, 1.0, items, torch::kFloat32);
      const torch::Tensor means = (b.slice(0, 0, items - 1) + b.slice(0, 1, items)) / 2.0;
      const double magnitude = std::pow(10.0, -6 + i);
      const torch::Tensor pos = (means * magnitude).contiguous();
      const torch::Tensor neg = (means * -magnitude).contiguous();
      for (int64_t k = 0; k < pos.numel(); ++k) data.push_back(pos.data_ptr<float>()[k]);
      for (int64_t k = 0; k < neg.numel(); ++k) data.push_back(neg.data_ptr<float>()[k]);
    }
    data.push_back(0.0);
    data.push_back(1.0);
    std::sort(data.begin(), data.end());
    std::array<float, 256> out{};
    for (size_t k = 0; k < out.size(); ++k) out[k] = static_cast<float>(data[k]);
    return out;
  }();
  return book;
}

namespace {

torch::Tensor cpu_float(const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat32).contiguous(); }

int64_t default_group(QuantScheme scheme, int64_t cols) {
  if (scheme == QuantScheme::kNf4) return 64;
  if (scheme == QuantScheme::kInt4) {
    for (int64_t g : {128, 64, 32}) {
      if (cols % g == 0) return g;
    }
    return cols;
  }
  return 0;
}

}  // namespace

// ---- bitsandbytes' block formats ---------------------------------------------------------------------------------

Nf4Blocks nf4_quantize_blocks(const at::Tensor& flat_in, int64_t blocksize) {
  const torch::Tensor flat = cpu_float(flat_in).reshape({-1});
  const int64_t n = flat.numel();
  if (blocksize < 2 || n % blocksize != 0 || n % 2 != 0)
    throw ConfigError("nf4: " + std::to_string(n) + " elements do not split into blocks of " +
                      std::to_string(blocksize));
  const auto& code = nf4_code_book();
  std::array<float, 15> bounds{};
  for (int k = 0; k < 15; ++k) bounds[k] = (code[k] + code[k + 1]) / 2.0f;  // fp32 midpoints, as bnb computes
  const int64_t blocks = n / blocksize;
  torch::Tensor absmax = torch::empty({blocks}, torch::kFloat32);
  torch::Tensor packed = torch::empty({n / 2}, torch::kUInt8);
  const float* x = flat.data_ptr<float>();
  float* am = absmax.data_ptr<float>();
  uint8_t* out = packed.data_ptr<uint8_t>();
  at::parallel_for(0, blocks, 16, [&](int64_t b0, int64_t b1) {
    std::vector<uint8_t> q(static_cast<size_t>(blocksize));
    for (int64_t b = b0; b < b1; ++b) {
      const float* v = x + b * blocksize;
      float m = 0.0f;
      for (int64_t i = 0; i < blocksize; ++i) m = std::max(m, std::fabs(v[i]));
      am[b] = m;
      const float inv = 1.0f / std::max(m, 1e-38f);
      for (int64_t i = 0; i < blocksize; ++i) {
        const float s = std::clamp(v[i] * inv, -1.0f, 1.0f);
        // torch.bucketize(right=False): the number of bounds strictly below s
        int k = 0;
        while (k < 15 && bounds[k] < s) ++k;
        q[static_cast<size_t>(i)] = static_cast<uint8_t>(k);
      }
      // blocks have an even size, so pairs never straddle two blocks
      for (int64_t i = 0; i < blocksize; i += 2)
        out[(b * blocksize + i) / 2] = static_cast<uint8_t>((q[i] << 4) | q[i + 1]);
    }
  });
  return {packed, absmax};
}

at::Tensor nf4_dequantize_blocks(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                                 at::ScalarType dtype) {
  const torch::Tensor p = packed.to(torch::kCPU).contiguous();
  const torch::Tensor am = cpu_float(absmax);
  const int64_t n = p.numel() * 2;
  if (am.numel() * blocksize != n) throw DataError("nf4: absmax does not match the packed codes");
  torch::Tensor out = torch::empty({n}, torch::kFloat32);
  const uint8_t* src = p.data_ptr<uint8_t>();
  const float* a = am.data_ptr<float>();
  float* y = out.data_ptr<float>();
  const auto& code = nf4_code_book();
  at::parallel_for(0, n / 2, 4096, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const float s = a[(2 * j) / blocksize];
      y[2 * j] = code[src[j] >> 4] * s;
      y[2 * j + 1] = code[src[j] & 0xF] * s;
    }
  });
  return out.to(dtype);
}

DynamicBlocks dynamic_quantize_blocks(const at::Tensor& flat_in, int64_t blocksize) {
  const torch::Tensor flat = cpu_float(flat_in).reshape({-1});
  const int64_t n = flat.numel();
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  DynamicBlocks q{torch::empty({n}, torch::kUInt8), torch::empty({blocks}, torch::kFloat32)};
  const auto& code = dynamic_code_book();
  const float* x = flat.data_ptr<float>();
  uint8_t* out = q.codes.data_ptr<uint8_t>();
  float* am = q.absmax.data_ptr<float>();
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    float m = -std::numeric_limits<float>::max();
    for (int64_t i = begin; i < end; ++i) m = std::fmax(m, std::fabs(x[i]));
    am[b] = m;
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i] / m;
      // the last code <= v (bnb's binary search returns the left neighbour), then the nearer of it and the next
      int64_t idx = std::upper_bound(code.begin(), code.end(), v) - code.begin() - 1;
      idx = std::max<int64_t>(idx, 0);
      if (idx < 255 && std::fabs(v - code[idx + 1]) < std::fabs(v - code[idx])) idx += 1;
      out[i] = static_cast<uint8_t>(idx);
    }
  }
  return q;
}

at::Tensor dynamic_dequantize_blocks(const DynamicBlocks& q, int64_t blocksize) {
  const torch::Tensor codes = q.codes.to(torch::kCPU).contiguous();
  const torch::Tensor am = cpu_float(q.absmax);
  const int64_t n = codes.numel();
  torch::Tensor out = torch::empty({n}, torch::kFloat32);
  const auto& code = dynamic_code_book();
  for (int64_t i = 0; i < n; ++i)
    out.data_ptr<float>()[i] = code[codes.data_ptr<uint8_t>()[i]] * am.data_ptr<float>()[i / blocksize];
  return out;
}

// ---- QuantizedMatrix --------------------------------------------------------------------------------------------

int64_t QuantizedMatrix::storage_bytes() const {
  auto bytes = [](const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; };
  int64_t total = bytes(data) + bytes(minimum);
  if (absmax_code.defined()) {
    total += bytes(absmax_code) + bytes(absmax_scale) + 4;  // + the fp32 offset
  } else {
    total += bytes(scale);
  }
  return total;
}

namespace {

// Codes of a packed 4-bit matrix as uint8 [rows, cols] (high nibble first).
torch::Tensor unpack_nibbles(const torch::Tensor& packed, int64_t rows, int64_t cols) {
  const torch::Tensor p = packed.reshape({rows, cols / 2});
  return torch::stack({torch::bitwise_right_shift(p, 4), torch::bitwise_and(p, 15)}, -1).reshape({rows, cols});
}

}  // namespace

at::Tensor QuantizedMatrix::dequantize(at::ScalarType dtype) const {
  torch::Tensor w;
  switch (scheme) {
    case QuantScheme::kNone: throw Error("dequantize: the matrix is not quantized");
    case QuantScheme::kInt8:
    case QuantScheme::kInt8Dynamic: w = data.to(torch::kFloat32) * scale.unsqueeze(1); break;
    case QuantScheme::kInt4: {
      const torch::Tensor codes =
          unpack_nibbles(data, rows, cols).to(torch::kFloat32).view({rows, cols / group, group});
      w = (codes * scale.unsqueeze(2) + minimum.unsqueeze(2)).view({rows, cols});
      break;
    }
    case QuantScheme::kNf4: {
      const torch::Tensor book =
          torch::from_blob(const_cast<float*>(nf4_code_book().data()), {16}, torch::kFloat32).to(data.device());
      const torch::Tensor codes = unpack_nibbles(data, rows, cols).to(torch::kLong).view({-1, group});
      w = (book.index({codes}) * scale.view({-1, 1})).view({rows, cols});
      break;
    }
  }
  return w.to(dtype);
}

at::Tensor QuantizedMatrix::dequantize_rows(const at::Tensor& ids, at::ScalarType dtype) const {
  const torch::Tensor flat = ids.reshape({-1}).to(data.device(), torch::kLong);
  torch::Tensor w;
  switch (scheme) {
    case QuantScheme::kNone: throw Error("dequantize_rows: the matrix is not quantized");
    case QuantScheme::kInt8:
    case QuantScheme::kInt8Dynamic:
      w = data.index_select(0, flat).to(torch::kFloat32) * scale.index_select(0, flat).unsqueeze(1);
      break;
    case QuantScheme::kInt4: {
      const int64_t n = flat.numel();
      const torch::Tensor codes = unpack_nibbles(data.view({rows, cols / 2}).index_select(0, flat), n, cols)
                                      .to(torch::kFloat32)
                                      .view({n, cols / group, group});
      w = (codes * scale.index_select(0, flat).unsqueeze(2) + minimum.index_select(0, flat).unsqueeze(2))
              .view({n, cols});
      break;
    }
    case QuantScheme::kNf4: {
      const int64_t n = flat.numel();
      const torch::Tensor book =
          torch::from_blob(const_cast<float*>(nf4_code_book().data()), {16}, torch::kFloat32).to(data.device());
      const torch::Tensor codes =
          unpack_nibbles(data.view({rows, cols / 2}).index_select(0, flat), n, cols).to(torch::kLong);
      const torch::Tensor am = scale.view({rows, cols / group}).index_select(0, flat);  // blocks never cross rows
      w = (book.index({codes}).view({n, cols / group, group}) * am.unsqueeze(2)).view({n, cols});
      break;
    }
  }
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(cols);
  return w.to(dtype).view(shape);
}

QuantizedMatrix quantize_matrix(const at::Tensor& weight, const QuantOptions& options) {
  if (weight.dim() != 2) throw ConfigError("quantize: expected a 2-D weight");
  QuantizedMatrix q;
  q.scheme = options.scheme;
  q.rows = weight.size(0);
  q.cols = weight.size(1);
  q.group = options.group > 0 ? options.group : default_group(options.scheme, q.cols);
  const torch::Device device = weight.device();
  const torch::Tensor w = weight.detach().to(torch::kFloat32).contiguous();
  torch::NoGradGuard no_grad;
  switch (options.scheme) {
    case QuantScheme::kNone: throw ConfigError("quantize: scheme 'none'");
    case QuantScheme::kInt8:
    case QuantScheme::kInt8Dynamic: {
      const torch::Tensor absmax = w.abs().amax(1);
      q.scale = absmax / 127.0f;
      const torch::Tensor safe = torch::where(q.scale > 0, q.scale, torch::ones_like(q.scale));
      q.data = torch::round(w / safe.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8);
      if (options.scheme == QuantScheme::kInt8Dynamic)
        q.row_sums = q.data.to(torch::kInt32).sum(1, false, torch::kInt32);
      break;
    }
    case QuantScheme::kInt4: {
      if (q.cols % 2 != 0 || q.cols % q.group != 0)
        throw ConfigError("int4: " + std::to_string(q.cols) + " columns do not split into groups of " +
                          std::to_string(q.group));
      const torch::Tensor g = w.view({q.rows, q.cols / q.group, q.group});
      const torch::Tensor lo = std::get<0>(g.min(2)), hi = std::get<0>(g.max(2));
      q.scale = (hi - lo) / 15.0f;
      q.minimum = lo;
      const torch::Tensor safe = torch::where(q.scale > 0, q.scale, torch::ones_like(q.scale));
      const torch::Tensor codes =
          torch::round((g - lo.unsqueeze(2)) / safe.unsqueeze(2)).clamp(0, 15).to(torch::kUInt8).view({q.rows, -1});
      const torch::Tensor pairs = codes.view({q.rows, q.cols / 2, 2});
      q.data = torch::bitwise_or(torch::bitwise_left_shift(pairs.select(2, 0), 4), pairs.select(2, 1))
                   .contiguous()
                   .view({-1});
      break;
    }
    case QuantScheme::kNf4: {
      if (q.cols % q.group != 0 || q.group % 2 != 0)
        throw ConfigError("nf4: " + std::to_string(q.cols) + " columns do not split into blocks of " +
                          std::to_string(q.group));
      const Nf4Blocks b = nf4_quantize_blocks(w, q.group);
      q.data = b.packed;
      if (options.double_quant) {
        const torch::Tensor offset = b.absmax.mean();
        q.absmax_offset = offset.item<float>();
        const DynamicBlocks d = dynamic_quantize_blocks(b.absmax - offset, 256);
        q.absmax_code = d.codes;
        q.absmax_scale = d.absmax;
        // what bitsandbytes dequantizes with: code[q] * absmax2 + offset, in fp32
        q.scale = dynamic_dequantize_blocks(d, 256) + offset;
      } else {
        q.scale = b.absmax;
      }
      break;
    }
  }
  auto move = [&](torch::Tensor& t) {
    if (t.defined()) t = t.to(device).contiguous();
  };
  move(q.data);
  move(q.scale);
  move(q.minimum);
  move(q.row_sums);
  move(q.absmax_code);
  move(q.absmax_scale);
  return q;
}

// ---- the product -------------------------------------------------------------------------------------------------

at::Tensor quantized_linear(const at::Tensor& x, const QuantizedMatrix& w, const at::Tensor& bias) {
  if (x.size(-1) != w.cols)
    throw Error("quantized_linear: input has " + std::to_string(x.size(-1)) + " features, the weight " +
                std::to_string(w.cols));
  const bool grad = torch::GradMode::is_enabled() && x.requires_grad();
  const bool cpu = w.data.is_cpu() && x.is_cpu();
  const int64_t m = x.numel() / w.cols;
  const bool decode_kernel = cpu && !grad && (m == 1 || w.scheme == QuantScheme::kInt8Dynamic);
  if (!decode_kernel)
    return torch::linear(x, w.dequantize(x.scalar_type()), bias.defined() ? bias.to(x.dtype()) : bias);
  const torch::Tensor xf = x.detach().to(torch::kFloat32).contiguous();
  const torch::Tensor b = bias.defined() ? cpu_float(bias) : torch::Tensor();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = w.rows;
  torch::Tensor y = torch::empty(shape, xf.options());
  switch (w.scheme) {
    case QuantScheme::kInt8:
      quant_kernels::int8_gemv(w.data.data_ptr<int8_t>(), w.scale.data_ptr<float>(), w.rows, w.cols,
                               xf.data_ptr<float>(), bp, y.data_ptr<float>());
      break;
    case QuantScheme::kInt4:
      quant_kernels::int4_gemv(w.data.data_ptr<uint8_t>(), w.scale.data_ptr<float>(), w.minimum.data_ptr<float>(),
                               w.rows, w.cols, w.group, xf.data_ptr<float>(), bp, y.data_ptr<float>());
      break;
    case QuantScheme::kNf4:
      quant_kernels::nf4_gemv(w.data.data_ptr<uint8_t>(), w.scale.data_ptr<float>(), nf4_code_book().data(), w.rows,
                              w.cols, w.group, xf.data_ptr<float>(), bp, y.data_ptr<float>());
      break;
    case QuantScheme::kInt8Dynamic: {
      torch::Tensor sums = w.row_sums;
      if (!sums.defined()) sums = w.data.to(torch::kInt32).sum(1, false, torch::kInt32).contiguous();
      quant_kernels::int8_dynamic_gemm(w.data.data_ptr<int8_t>(), w.scale.data_ptr<float>(), sums.data_ptr<int32_t>(),
                                       w.rows, w.cols, xf.data_ptr<float>(), m, bp, y.data_ptr<float>());
      break;
    }
    case QuantScheme::kNone: throw Error("quantized_linear: the matrix is not quantized");
  }
  return y.to(x.scalar_type());
}

namespace {
// Forward dequantize(quantize(W)) exactly; backward the identity (the straight-through estimator).
struct FakeQuantFn : torch::autograd::Function<FakeQuantFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* /*ctx*/, const torch::Tensor& weight, int64_t scheme,
                               int64_t group, bool double_quant) {
    const QuantOptions o{static_cast<QuantScheme>(scheme), group, double_quant};
    return quantize_matrix(weight, o).dequantize(weight.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* /*ctx*/,
                                                 torch::autograd::variable_list grad) {
    return {grad[0], torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

at::Tensor fake_quantize(const at::Tensor& weight, const QuantOptions& options) {
  return FakeQuantFn::apply(weight, static_cast<int64_t>(options.scheme), options.group, options.double_quant);
}

}  // namespace troupe::models

namespace troupe::models {

void QuantSection::validate(core::ConfigValidator& v) const {
  v.require(group >= 0 && group % 2 == 0, "group", group, "an even integer >= 0 (0 = the scheme's default)");
  v.require(!targets.empty() || embedding, "targets", targets, "at least one pattern");
  v.require(!qat || scheme == QuantScheme::kInt8 || scheme == QuantScheme::kInt4 || scheme == QuantScheme::kNf4, "qat",
            qat, "false unless scheme is int8, int4 or nf4");
}

}  // namespace troupe::models
