// Implementation of distributed/group_relay.h.
#include "distributed/group_relay.h"

#include <torch/torch.h>

#include <cstring>

#include "core/errors.h"
#include "core/progress.h"

namespace troupe::distributed {

void broadcast_request(distributed::Communicator& comm, const Message& message) {
  std::vector<Frame> frames = encode(message);
  torch::Tensor sizes = torch::empty({static_cast<int64_t>(frames.size()) + 1}, torch::kLong);
  sizes[0] = static_cast<int64_t>(frames.size());
  int64_t total = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    sizes[static_cast<int64_t>(i) + 1] = static_cast<int64_t>(frames[i].size());
    total += static_cast<int64_t>(frames[i].size());
  }
  torch::Tensor header = torch::tensor({sizes.numel()}, torch::kLong);
  comm.broadcast(header, 0);
  comm.broadcast(sizes, 0);
  torch::Tensor bytes = torch::empty({total}, torch::kUInt8);
  auto* out = static_cast<uint8_t*>(bytes.data_ptr());
  for (auto& f : frames) {
    std::memcpy(out, f.data(), f.size());
    out += f.size();
  }
  comm.broadcast(bytes, 0);
}

Message receive_request(distributed::Communicator& comm) {
  torch::Tensor header = torch::zeros({1}, torch::kLong);
  comm.broadcast(header, 0);
  const int64_t n = header[0].item<int64_t>();
  if (n < 2 || n > 1 << 20) throw ProtocolError("group relay: bad frame table of " + std::to_string(n) + " entries");
  torch::Tensor sizes = torch::zeros({n}, torch::kLong);
  comm.broadcast(sizes, 0);
  int64_t total = 0;
  for (int64_t i = 1; i < n; ++i) total += sizes[i].item<int64_t>();
  torch::Tensor bytes = torch::empty({total}, torch::kUInt8);
  comm.broadcast(bytes, 0);
  // The frames alias the received buffer, which they keep alive: no copy.
  auto owner = std::make_shared<const torch::Tensor>(bytes);
  std::vector<Frame> frames;
  const auto* in = static_cast<const uint8_t*>(bytes.data_ptr());
  for (int64_t i = 1; i < n; ++i) {
    const auto size = static_cast<size_t>(sizes[i].item<int64_t>());
    frames.emplace_back(in, size, owner);
    in += size;
  }
  return decode(std::move(frames));
}

void serve_group(distributed::Communicator& comm, Server* server, const Handler& handler, const ServeOptions& options,
                 std::chrono::milliseconds keepalive) {
  if (comm.rank() != 0) {
    while (true) {
      const Message m = receive_request(comm);
      if (m.type == MessageType::kShutdown) return;
      if (m.type == MessageType::kHeartbeat) continue;
      handler(m);  // an exception ends this rank, and with it the group: the controller sees the role die
      core::progress_tick();
    }
  }
  if (server == nullptr) throw Error("serve_group: rank 0 needs a server");
  auto last = std::chrono::steady_clock::now();
  ServeOptions relay = options;
  relay.should_stop = [&] {
    if (options.should_stop && options.should_stop()) return true;
    if (std::chrono::steady_clock::now() - last > keepalive) {
      Message beat;
      beat.type = MessageType::kHeartbeat;
      broadcast_request(comm, beat);
      last = std::chrono::steady_clock::now();
    }
    return false;
  };
  serve(
      *server,
      [&](const Message& m) {
        broadcast_request(comm, m);
        last = std::chrono::steady_clock::now();
        return handler(m);
      },
      relay);
  Message stop;
  stop.type = MessageType::kShutdown;
  broadcast_request(comm, stop);
}

}  // namespace troupe::distributed
