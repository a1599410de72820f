// Weight quantization for the GPT's linear layers (and its tied embedding / LM head): the formats, their
// quantize / dequantize functions, and a quantized matrix product that dispatches to the batch-1 decode kernels of
// models/quant_kernels.h. Formats, for a weight W [rows = out, cols = in]:
//   int8   per-channel symmetric: q int8 [rows, cols], scale fp32 [rows] = max|W[r,:]| / 127, W ~ q * scale.
//   int4   group-wise asymmetric round-to-nearest: groups of `group` consecutive columns; per group
//          scale = (max - min) / 15 and min (fp32 [rows, cols/group]); q = clamp(round((w - min) / scale), 0, 15),
//          W ~ q * scale + min. Two codes per byte, the even column in the HIGH nibble (as bitsandbytes packs).
//   nf4    bitsandbytes' 4-bit NormalFloat: blocks of `group` (64) consecutive elements of the flattened W, absmax
//          per block, each value the nearest of the 16 NF4 levels of x / absmax; packed as bitsandbytes packs
//          (first of each pair in the high nibble). Optional double quantization of the absmax values (blocks of
//          256, bitsandbytes' signed dynamic 8-bit map, offset = their mean).
//   int8_dynamic  int8 weights as int8 above; activations quantized to int8 per row (token) at run time and the
//          product computed in int32 (VNNI dot products where the CPU has them), as torch's dynamic quantization.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/quant_config.h"

namespace troupe::models {

// bitsandbytes' NF4 code book (functional.py get_4bit_type("nf4")), ascending, code 7 = 0.
const std::array<float, 16>& nf4_code_book();
// bitsandbytes' create_dynamic_map(signed=True) (256 values), the code book of the double-quantized absmax.
const std::array<float, 256>& dynamic_code_book();

// A quantized [rows, cols] matrix. Tensors are CPU (or the layer's device) and contiguous.
struct QuantizedMatrix {
  QuantScheme scheme = QuantScheme::kNone;
  int64_t rows = 0, cols = 0;
  int64_t group = 0;    // int4: columns per group; nf4: elements per block
  at::Tensor data;      // int8 [rows, cols] (int8, int8_dynamic) | uint8 [rows * cols / 2] (int4, nf4)
  at::Tensor scale;     // fp32: int8 [rows]; int4 [rows, cols / group]; nf4 absmax [rows * cols / group]
  at::Tensor minimum;   // int4 only: fp32 [rows, cols / group]
  at::Tensor row_sums;  // int8_dynamic only: int32 [rows], sum of each row's codes (derived, not stored)
  // nf4 with double quantization: the stored form of `scale` (which then holds the dequantized absmax).
  at::Tensor absmax_code;    // uint8 [blocks]
  at::Tensor absmax_scale;   // fp32 [ceil(blocks / 256)]
  double absmax_offset = 0;  // the mean subtracted before quantizing

  bool defined() const { return scheme != QuantScheme::kNone; }
  // Bytes of the stored form (codes, scales, minima; the double-quantized absmax when present).
  int64_t storage_bytes() const;
  // The dequantized matrix [rows, cols] in `dtype`.
  at::Tensor dequantize(at::ScalarType dtype = at::kFloat) const;
  // Rows `ids` (int64, any shape S) dequantized: [S..., cols] (the embedding lookup of a quantized table).
  at::Tensor dequantize_rows(const at::Tensor& ids, at::ScalarType dtype = at::kFloat) const;
};

// Quantizes W [rows, cols] (fp32 or bf16, any device; the result lives on W's device). ConfigError when cols is
// not a multiple of the group (int4), or rows * cols of the block size (nf4), or cols is odd (4-bit schemes).
QuantizedMatrix quantize_matrix(const at::Tensor& weight, const QuantOptions& options);

// y = x W^T + b for x [..., cols] (fp32 or bf16; y has x's dtype). A single row without autograd takes the decode
// kernels (models/quant_kernels.h); anything else dequantizes W to x's dtype and runs torch::linear, which keeps
// autograd through x (the QLoRA path: W is frozen, gradients flow to x and the adapters).
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedMatrix& w, const at::Tensor& bias);

// bitsandbytes' quantize_4bit / quantize_blockwise on a flat tensor (tests and the NF4 path above):
// nf4_quantize_blocks returns packed codes (uint8 [n / 2]) and absmax (fp32 [n / blocksize]); with
// double_quant the absmax is then quantized by dynamic_quantize_blocks (blocks of 256) after subtracting its mean.
struct Nf4Blocks {
  at::Tensor packed, absmax;
};
Nf4Blocks nf4_quantize_blocks(const at::Tensor& flat, int64_t blocksize);
at::Tensor nf4_dequantize_blocks(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                                 at::ScalarType dtype = at::kFloat);
struct DynamicBlocks {
  at::Tensor codes, absmax;  // uint8 [n], fp32 [ceil(n / blocksize)]
};
DynamicBlocks dynamic_quantize_blocks(const at::Tensor& flat, int64_t blocksize);
at::Tensor dynamic_dequantize_blocks(const DynamicBlocks& q, int64_t blocksize);

// Fake quantization for quantization-aware training: the forward value is dequantize(quantize(W)) under `options`
// (int8 / int4 / nf4), the backward passes the gradient straight through (STE) to W unchanged.
at::Tensor fake_quantize(const at::Tensor& weight, const QuantOptions& options);

}  // namespace troupe::models
