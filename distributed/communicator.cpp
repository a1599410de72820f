// Implementation of distributed/communicator.h: the one-rank group's gather and scatter are copies.
#include "distributed/communicator.h"

#include <torch/torch.h>

#include "core/errors.h"

namespace troupe::distributed {

bool Communicator::accepts(const c10::Device& device) const { return device.is_cpu(); }

void check_gather_shapes(const char* who, const at::Tensor& part, const at::Tensor& whole, int size) {
  if (whole.numel() != part.numel() * size || whole.scalar_type() != part.scalar_type()) {
    throw ConfigError(std::string(who) + ": the whole tensor must hold " + std::to_string(size) + " x " +
                      std::to_string(part.numel()) + " elements of " + c10::toString(part.scalar_type()) + ", has " +
                      std::to_string(whole.numel()) + " of " + c10::toString(whole.scalar_type()));
  }
}

void SingleProcessCommunicator::all_gather(const at::Tensor& input, at::Tensor& output) {
  check_gather_shapes("all_gather", input, output, 1);
  output.view_as(input).copy_(input);
}

void SingleProcessCommunicator::reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) {
  check_gather_shapes("reduce_scatter_sum", output, input, 1);
  output.copy_(input.view_as(output));
}

}  // namespace troupe::distributed
