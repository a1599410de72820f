// Implementation of core/communicator.h: the one-rank group's gather and scatter are copies.
#include "core/communicator.h"

#include <torch/torch.h>

#include "core/errors.h"

namespace troupe::core {

void SingleProcessCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  if (output.numel() != input.numel()) throw ConfigError("all_gather: output must hold size() * input elements");
  output.view_as(input).copy_(input);
}

void SingleProcessCommunicator::reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) {
  if (output.numel() != input.numel()) throw ConfigError("reduce_scatter_sum: input must hold size() * output elements");
  output.copy_(input.view_as(output));
}

}  // namespace troupe::core
