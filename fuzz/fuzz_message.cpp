// Fuzz target: the message decoder (distributed/message.h). The input is cut into frames by a small length-prefixed
// scheme: each frame is a little-endian u16 length then that many bytes (a length beyond the input takes the rest),
// frame 0 being the header. Frames alias one copy of the input, so they sit at any alignment, as inside ZeroMQ's
// receive buffer. peek_request_id reads the header; a message that decodes is encoded again and must decode to the
// same fields and tensor bytes. Bad input must be a ProtocolError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "distributed/message.h"

namespace {

using troupe::distributed::Frame;

std::vector<Frame> split_frames(const std::shared_ptr<const std::string>& input) {
  std::vector<Frame> frames;
  size_t pos = 0;
  while (pos < input->size() && frames.size() < 64) {
    size_t n = static_cast<uint8_t>((*input)[pos]);
    if (pos + 1 < input->size()) n |= size_t{static_cast<uint8_t>((*input)[pos + 1])} << 8;
    pos = std::min(pos + 2, input->size());
    n = std::min(n, input->size() - pos);
    frames.emplace_back(input->data() + pos, n, input);
    pos += n;
  }
  return frames;
}

// Aborts (a finding) when `a` and `b` differ in any field or tensor byte.
void require_same(const troupe::distributed::Message& a, const troupe::distributed::Message& b) {
  bool same = a.type == b.type && a.request_id == b.request_id && a.step == b.step &&
              a.weight_version == b.weight_version && a.strings == b.strings && a.scalars.size() == b.scalars.size() &&
              a.tensors.size() == b.tensors.size();
  for (auto i = a.scalars.begin(), j = b.scalars.begin(); same && i != a.scalars.end(); ++i, ++j)
    same = i->first == j->first && std::memcmp(&i->second, &j->second, sizeof(double)) == 0;
  for (size_t i = 0; same && i < a.tensors.size(); ++i) {
    const auto& [na, ta] = a.tensors[i];
    const auto& [nb, tb] = b.tensors[i];
    same = na == nb && ta.scalar_type() == tb.scalar_type() && ta.sizes().equals(tb.sizes()) &&
           ta.nbytes() == tb.nbytes() &&
           (ta.nbytes() == 0 || std::memcmp(ta.data_ptr(), tb.data_ptr(), ta.nbytes()) == 0);
  }
  if (!same) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
  std::vector<Frame> frames = split_frames(input);
  if (!frames.empty()) (void)troupe::distributed::peek_request_id(frames[0]);
  try {
    const troupe::distributed::Message m = troupe::distributed::decode(std::move(frames));
    const troupe::distributed::Message again = troupe::distributed::decode(troupe::distributed::encode(m));
    require_same(m, again);
    if (troupe::distributed::peek_request_id(troupe::distributed::encode(m)[0]) != m.request_id) std::abort();
  } catch (const troupe::Error&) {
  }
  return 0;
}
