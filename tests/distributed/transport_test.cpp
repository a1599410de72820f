// Server/Client/serve in one process: a server on a thread and clients on the test thread, over inproc (and one
// call each over tcp://127.0.0.1:* and ipc:// in a scratch directory). Waits are deadlines, never sleeps.
#include "distributed/transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>
#include <zmq.h>

#include <atomic>
#include <future>
#include <regex>
#include <thread>
#include <zmq.hpp>

#include "core/errors.h"
#include "distributed/checked_call.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string inproc(const std::string& tag) {
  return "inproc://transport-test-" + tag + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

Message request_with(MessageType type, at::Tensor x) {
  Message m;
  m.type = type;
  m.step = 4;
  m.tensors.emplace_back("x", std::move(x));
  return m;
}

// y = 2x, and the element count as a scalar; throws on kScore so tests can see a remote error.
Message doubling_handler(const Message& request) {
  if (request.type == MessageType::kScore) throw DataError("bad batch: no sequences");
  Message reply;
  reply.step = request.step;
  reply.tensors.emplace_back("y", request.tensor("x") * 2);
  reply.scalars["numel"] = static_cast<double>(request.tensor("x").numel());
  return reply;
}

// serve() on its own thread until the destructor stops it (or a kShutdown arrives first).
class ServeThread {
 public:
  ServeThread(Server& server, Handler handler) {
    done_ = std::async(std::launch::async, [this, &server, handler] {
      ServeOptions options;
      options.poll_interval = 10ms;
      options.should_stop = [this] { return stop_.load(); };
      serve(server, handler, options);
    });
  }
  ~ServeThread() {
    stop_ = true;
    if (done_.valid()) done_.wait();
  }
  // True once serve() has returned (rethrows what it threw).
  bool finished_within(std::chrono::milliseconds timeout) {
    if (done_.wait_for(timeout) != std::future_status::ready) return false;
    done_.get();
    return true;
  }

 private:
  std::atomic<bool> stop_{false};
  std::future<void> done_;
};

TEST(Transport, CallRoundTripOverInproc) {
  Server server(inproc("w"));
  ServeThread thread(server, doubling_handler);
  Client client("actor rank 0", server.endpoint());
  const Message reply = client.call(request_with(MessageType::kGenerate, torch::arange(6.0).reshape({2, 3})), 5s);
  EXPECT_EQ(reply.type, MessageType::kReply);
  EXPECT_EQ(reply.request_id, 1u);
  EXPECT_EQ(reply.step, 4);
  EXPECT_EQ(reply.scalar("numel"), 6.0);
  EXPECT_TRUE(torch::equal(reply.tensor("y"), torch::arange(6.0).reshape({2, 3}) * 2));
  const Message second = client.call(request_with(MessageType::kLogprobs, torch::ones({1})), 5s);
  EXPECT_EQ(second.request_id, 2u);
}

TEST(Transport, RepliesArrivingOutOfOrderAreMatchedById) {
  Server server(inproc("w"));
  std::thread worker([&server] {
    auto a = server.receive(5s);
    auto b = server.receive(5s);
    ASSERT_TRUE(a && b);
    for (auto* in : {&*b, &*a}) {  // answer the second request first
      Message reply;
      reply.strings["echo"] = in->message.strings.at("tag");
      server.reply(*in, reply);
    }
  });
  Client client("critic rank 0", server.endpoint());
  Message a, b;
  a.strings["tag"] = "first";
  b.strings["tag"] = "second";
  const uint64_t id_a = client.send(a);
  const uint64_t id_b = client.send(b);
  EXPECT_EQ(client.receive(id_a, 5s).strings.at("echo"), "first");  // b's reply arrives first and is kept
  EXPECT_EQ(client.receive(id_b, 5s).strings.at("echo"), "second");
  worker.join();
}

// answered(): a reply that has arrived while the caller looked elsewhere counts as answered (and stays for receive);
// one not yet sent does not.
TEST(Transport, AnsweredSeesArrivedRepliesWithoutConsumingThem) {
  Server server(inproc("w"));
  Client client("critic rank 0", server.endpoint());
  const uint64_t id = client.send(Message{});
  auto in = server.receive(5s);
  ASSERT_TRUE(in);
  EXPECT_FALSE(client.answered(id));
  server.reply(*in, Message{});
  const auto deadline = Clock::now() + 5s;
  while (!client.answered(id) && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(client.answered(id));
  EXPECT_EQ(client.receive(id, 1s).type, MessageType::kReply);
}

// Fault injection (TROUPE_CHAOS): after SIGUSR2 the sockets open at that moment are dropped — the server hears
// nothing more, the client's request is lost and no reply comes — while sockets opened afterwards work.
TEST(Transport, SigusrTwoDropsTheSocketsOpenAtThatMomentOnly) {
  drop_sockets_on_sigusr2();
  Server server(inproc("old"));
  Client client("reward rank 0", server.endpoint());
  ServeThread serving(server, doubling_handler);
  EXPECT_EQ(client.call(request_with(MessageType::kValues, torch::ones({2})), 5s).scalar("numel"), 2.0);
  ASSERT_EQ(::raise(SIGUSR2), 0);
  const uint64_t lost = client.send(request_with(MessageType::kValues, torch::ones({2})));
  EXPECT_FALSE(client.try_receive(lost, 300ms));
  EXPECT_FALSE(client.answered(lost));
  Server fresh(inproc("new"));
  ServeThread serving_fresh(fresh, doubling_handler);
  Client reconnected("reward rank 0", fresh.endpoint());
  EXPECT_EQ(reconnected.call(request_with(MessageType::kValues, torch::ones({3})), 5s).scalar("numel"), 3.0);
}

TEST(Transport, TimeoutWhenTheServerNeverAnswers) {
  Server server(inproc("silent"));  // bound, but nobody receives
  Client client("critic rank 0", server.endpoint());
  const auto start = Clock::now();
  try {
    client.call(request_with(MessageType::kValues, torch::ones({2})), 200ms);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("critic rank 0 (" + server.endpoint() + ")"));
    EXPECT_THAT(e.what(), HasSubstr("no reply to request 1 (values) within 200 ms"));
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(Transport, LateReplyToAnAbandonedRequestIsDropped) {
  Server server(inproc("slow"));
  std::atomic<bool> release{false};
  std::thread worker([&] {
    auto slow = server.receive(5s);
    ASSERT_TRUE(slow);
    ASSERT_TRUE(testing::wait_until([&] { return release.load(); }, 5s));
    server.reply(*slow, Message{});                                // late: the client gave up on it
    serve(server, doubling_handler, ServeOptions{10ms, nullptr});  // until kShutdown
  });
  Client client("reward", server.endpoint());
  EXPECT_THROW(client.call(Message{MessageType::kScore}, 100ms), TimeoutError);
  release = true;
  const Message reply = client.call(request_with(MessageType::kGenerate, torch::ones({3})), 5s);
  EXPECT_EQ(reply.request_id, 2u);
  EXPECT_EQ(reply.scalar("numel"), 3.0);
  client.call(Message{MessageType::kShutdown}, 5s);
  worker.join();
}

TEST(Transport, HandlerExceptionBecomesRemoteErrorAndServingGoesOn) {
  Server server(inproc("w"));
  ServeThread thread(server, doubling_handler);
  Client client("reward rank 0", server.endpoint());
  try {
    client.call(Message{MessageType::kScore}, 5s);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_THAT(e.what(), HasSubstr("reward rank 0"));
    EXPECT_THAT(e.what(), HasSubstr("request 1 (score) failed: bad batch: no sequences"));
  }
  // A handler that reads a missing tensor: the ProtocolError text travels back too.
  EXPECT_THROW(
      {
        try {
          client.call(Message{MessageType::kGenerate}, 5s);
        } catch (const RemoteError& e) {
          EXPECT_THAT(e.what(), HasSubstr("has no tensor 'x'"));
          throw;
        }
      },
      RemoteError);
  EXPECT_EQ(client.call(request_with(MessageType::kGenerate, torch::ones({2})), 5s).scalar("numel"), 2.0);
}

TEST(Transport, HeartbeatIsAnsweredWithoutTheHandler) {
  Server server(inproc("w"));
  std::atomic<int> handled{0};
  ServeThread thread(server, [&](const Message& m) {
    ++handled;
    return doubling_handler(m);
  });
  Client client("reference", server.endpoint());
  const Message pong = client.call(Message{MessageType::kHeartbeat}, 5s);
  EXPECT_EQ(pong.type, MessageType::kReply);
  EXPECT_EQ(pong.request_id, 1u);
  EXPECT_EQ(handled.load(), 0);
  client.call(request_with(MessageType::kGenerate, torch::ones({1})), 5s);
  EXPECT_EQ(handled.load(), 1);
}

TEST(Transport, ShutdownRequestEndsServe) {
  Server server(inproc("w"));
  ServeThread thread(server, doubling_handler);
  Client client("actor", server.endpoint());
  EXPECT_EQ(client.call(Message{MessageType::kShutdown}, 5s).type, MessageType::kReply);
  EXPECT_TRUE(thread.finished_within(5s));
}

TEST(Transport, StopPredicateEndsServe) {
  Server server(inproc("w"));
  std::atomic<bool> stop{false};
  auto done = std::async(std::launch::async, [&] {
    serve(server, doubling_handler, ServeOptions{10ms, [&] { return stop.load(); }});
  });
  stop = true;
  EXPECT_EQ(done.wait_for(5s), std::future_status::ready);
}

TEST(Transport, InterruptedHandlerAnswersThenStopsServe) {
  Server server(inproc("w"));
  auto done = std::async(std::launch::async,
                         [&] { serve(server, [](const Message&) -> Message { throw Interrupted(SIGTERM); }); });
  Client client("actor", server.endpoint());
  EXPECT_THROW(client.call(Message{MessageType::kGenerate}, 5s), RemoteError);
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_THROW(done.get(), Interrupted);
}

TEST(Transport, MalformedRequestGetsAnErrorReplyAndTheServerLivesOn) {
  Server server(inproc("w"));
  ServeThread thread(server, doubling_handler);
  // A raw DEALER sends a message whose last tensor frame is missing.
  void* raw = TROUPE_ZMQ_PTR(zmq_socket(zmq_context_handle(), ZMQ_DEALER));
  int linger = 0;
  TROUPE_ZMQ(zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof(linger)));
  TROUPE_ZMQ(zmq_connect(raw, server.endpoint().c_str()));
  Message m;
  m.request_id = 77;
  m.tensors = {{"a", torch::ones({2})}, {"b", torch::ones({3})}};
  const auto encoded = encode(m);
  zmq::message_t header(encoded[0].data(), encoded[0].size()), first(encoded[1].data(), encoded[1].size());
  testing::zmq_handoff(header.data());
  testing::zmq_handoff(first.data());
  TROUPE_ZMQ(zmq_msg_send(header.handle(), raw, ZMQ_SNDMORE));
  TROUPE_ZMQ(zmq_msg_send(first.handle(), raw, 0));
  zmq_pollitem_t item{raw, 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(TROUPE_ZMQ(zmq_poll(&item, 1, 5000)), 1);
  std::vector<zmq::message_t> reply_frames;
  int more = 1;
  while (more) {
    TROUPE_ZMQ(zmq_msg_recv(reply_frames.emplace_back().handle(), raw, 0));
    more = TROUPE_ZMQ(zmq_msg_more(reply_frames.back().handle()));
  }
  TROUPE_ZMQ(zmq_close(raw));
  std::vector<Frame> frames;
  for (const auto& f : reply_frames) {
    testing::zmq_received(f.data());
    frames.emplace_back(f.to_string());
  }
  const Message reply = decode(std::move(frames));
  EXPECT_EQ(reply.type, MessageType::kError);
  EXPECT_EQ(reply.request_id, 77u);  // matched from the readable header prefix
  EXPECT_THAT(reply.strings.at("error"), HasSubstr("header declares 2 tensors but 1 tensor frames arrived"));
  Client client("actor", server.endpoint());
  EXPECT_EQ(client.call(request_with(MessageType::kGenerate, torch::ones({4})), 5s).scalar("numel"), 4.0);
}

TEST(Transport, TwoClientsEachGetTheirOwnReplies) {
  Server server(inproc("w"));
  ServeThread thread(server, doubling_handler);
  Client a("a", server.endpoint()), b("b", server.endpoint());
  const uint64_t ia = a.send(request_with(MessageType::kGenerate, torch::ones({1})));
  const uint64_t ib = b.send(request_with(MessageType::kGenerate, torch::ones({5})));
  EXPECT_EQ(ia, ib);  // ids are per client
  EXPECT_EQ(b.receive(ib, 5s).scalar("numel"), 5.0);
  EXPECT_EQ(a.receive(ia, 5s).scalar("numel"), 1.0);
}

TEST(Transport, ReceiveOfAnUnknownIdIsAnError) {
  Server server(inproc("w"));
  Client client("actor", server.endpoint());
  try {
    client.receive(99, 10ms);
    FAIL();
  } catch (const TimeoutError&) {
    FAIL() << "not a timeout";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("request 99 is not outstanding"));
  }
}

TEST(Transport, TcpEphemeralPortIsReadBackAndServes) {
  Server server("tcp://127.0.0.1:*");
  EXPECT_TRUE(std::regex_match(server.endpoint(), std::regex(R"(tcp://127\.0\.0\.1:\d+)"))) << server.endpoint();
  ServeThread thread(server, doubling_handler);
  Client client("critic rank 0", server.endpoint());
  auto x = torch::randn({256, 1024});  // 1 MiB
  const Message reply = client.call(request_with(MessageType::kValues, x), 10s);
  EXPECT_TRUE(torch::equal(reply.tensor("y"), x * 2));
}

TEST(Transport, IpcEndpointInAScratchDirectory) {
  testing::ScratchDir dir("troupe-ipc");
  const std::string endpoint = "ipc://" + (dir / "critic.sock").string();
  Server server(endpoint);
  EXPECT_EQ(server.endpoint(), endpoint);
  ServeThread thread(server, doubling_handler);
  Client client("critic rank 0", endpoint);
  const Message reply = client.call(request_with(MessageType::kValues, torch::arange(10, torch::kLong)), 10s);
  EXPECT_TRUE(torch::equal(reply.tensor("y"), torch::arange(10, torch::kLong) * 2));
}

TEST(Transport, BindingAnEndpointInUseIsAnIoError) {
  Server first("tcp://127.0.0.1:*");
  EXPECT_THROW(Server second(first.endpoint()), IoError);
}

}  // namespace
}  // namespace troupe::distributed
