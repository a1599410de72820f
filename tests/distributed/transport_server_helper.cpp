// A worker process for transport_mp_test: binds a Server to argv[1], writes the resolved endpoint to the file
// argv[2] (atomically, via rename) and serves until kShutdown. Requests: kGenerate -> y = 2x; kValues with scalar
// "work_ms" -> prints "working", then simulates that much work (so the test can kill it mid-request).
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "core/errors.h"
#include "distributed/transport.h"

namespace {

using namespace troupe::distributed;

Message handle(const Message& request) {
  Message reply;
  reply.step = request.step;
  if (request.type == MessageType::kValues) {
    std::cout << "working on request " << request.request_id << std::endl;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(request.scalar("work_ms"))));
    return reply;
  }
  for (const auto& [name, t] : request.tensors) reply.tensors.emplace_back(name, t * 2);
  reply.scalars["pid"] = static_cast<double>(::getpid());
  return reply;
}

void write_endpoint(const std::filesystem::path& file, const std::string& endpoint) {
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << endpoint;
    if (!out) throw troupe::IoError("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, file);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <bind endpoint> <endpoint file>\n";
    return 2;
  }
  try {
    Server server(argv[1]);
    write_endpoint(argv[2], server.endpoint());
    std::cout << "serving on " << server.endpoint() << std::endl;
    serve(server, handle);
    std::cout << "shut down" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "transport_server_helper: " << e.what() << std::endl;
    return 1;
  }
}
