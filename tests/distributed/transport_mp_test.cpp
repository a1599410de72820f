// The transport between real processes: a worker process (transport_server_helper) serving over tcp and ipc,
// called with tensors; and the fault test: kill -9 the worker mid-request and the client's receive fails with
// TimeoutError at its deadline instead of hanging.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>

#include "core/errors.h"
#include "distributed/transport.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The helper process, started and waited for until it has written its endpoint.
class WorkerProcess {
 public:
  explicit WorkerProcess(const std::string& kind) : dir_("troupe-transport-mp") {
    const std::string bind = kind == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + (dir_ / "worker.sock").string();
    const auto endpoint_file = dir_ / "endpoint";
    child_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::helper_path("transport_server_helper"), bind, endpoint_file.string()},
        dir_ / "worker.out");
    if (!testing::wait_until([&] { return std::filesystem::exists(endpoint_file); }, 60s))
      throw TimeoutError("worker did not write its endpoint; output:\n" + child_->output());
    endpoint_ = testing::read_file(endpoint_file);
  }
  const std::string& endpoint() const { return endpoint_; }
  testing::ChildProcess& child() { return *child_; }

 private:
  testing::ScratchDir dir_;
  std::unique_ptr<testing::ChildProcess> child_;
  std::string endpoint_;
};

class TransportProcess : public ::testing::TestWithParam<std::string> {};

TEST_P(TransportProcess, CallsAWorkerProcessWithTensors) {
  WorkerProcess worker(GetParam());
  EXPECT_THAT(worker.endpoint(), ::testing::StartsWith(GetParam() + "://"));
  Client client("actor rank 0", worker.endpoint());
  for (int64_t n : {0, 1, 1000, 1 << 20}) {  // up to 4 MiB of float32
    Message request;
    request.type = MessageType::kGenerate;
    request.step = n;
    auto x = torch::randn({n});
    auto ids = torch::arange(n % 97, torch::kLong);
    request.tensors = {{"x", x}, {"ids", ids}};
    const Message reply = client.call(request, 30s);
    EXPECT_EQ(reply.step, n);
    EXPECT_EQ(reply.scalar("pid"), static_cast<double>(worker.child().pid()));
    EXPECT_TRUE(torch::equal(reply.tensor("x"), x * 2));
    EXPECT_TRUE(torch::equal(reply.tensor("ids"), ids * 2));
  }
  EXPECT_EQ(client.call(Message{MessageType::kHeartbeat}, 10s).type, MessageType::kReply);
  client.call(Message{MessageType::kShutdown}, 10s);
  EXPECT_EQ(worker.child().wait(30s), 0) << worker.child().output();
}

TEST_P(TransportProcess, KilledWorkerIsATimeoutNotAHang) {
  WorkerProcess worker(GetParam());
  Client client("critic rank 0", worker.endpoint());
  client.call(Message{MessageType::kHeartbeat}, 30s);  // connected and serving
  Message slow{MessageType::kValues};
  slow.scalars["work_ms"] = 600000;
  const uint64_t id = client.send(slow);
  ASSERT_TRUE(testing::wait_until([&] { return worker.child().output().find("working") != std::string::npos; }, 30s))
      << worker.child().output();
  worker.child().kill(SIGKILL);  // mid-request
  EXPECT_EQ(worker.child().wait(10s), 128 + SIGKILL);

  const auto deadline = 2s;
  auto start = Clock::now();
  try {
    client.receive(id, deadline);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("critic rank 0 (" + worker.endpoint() + "): no reply to request 2 (values)"));
  }
  EXPECT_GE(Clock::now() - start, deadline);
  EXPECT_LT(Clock::now() - start, deadline + 1s);

  start = Clock::now();  // the next call to the dead worker fails the same way
  EXPECT_THROW(client.call(Message{MessageType::kGenerate}, deadline), TimeoutError);
  EXPECT_LT(Clock::now() - start, deadline + 1s);
}

INSTANTIATE_TEST_SUITE_P(Endpoints, TransportProcess, ::testing::Values("tcp", "ipc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace troupe::distributed
