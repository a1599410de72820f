// The group relay (distributed/group_relay.h) in one process: W ranks as threads of an in-memory group, rank 0
// serving an inproc endpoint. Every rank sees every request, in order, with its tensors intact; only rank 0's
// reply reaches the client; heartbeats keep idle ranks inside their deadline; kShutdown ends every rank.
#include "distributed/group_relay.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <mutex>

#include "core/errors.h"
#include "distributed/thread_communicator.h"
#include "tests/support/test_support.h"

namespace troupe::distributed {
namespace {

using namespace std::chrono_literals;

TEST(GroupRelay, BroadcastDeliversTheMessageToEveryRank) {
  for (int world : {1, 2, 4}) {
    auto group = make_thread_group(world, 30s);
    Message m(MessageType::kTrainPolicy);
    m.step = 7;
    m.weight_version = 3;
    m.scalars["kl_coef"] = 0.25;
    m.strings["note"] = "hello";
    m.tensors = {{"x", torch::arange(12, torch::kFloat).reshape({3, 4})}, {"ids", torch::tensor({1, 2}, torch::kLong)}};
    std::vector<Message> got(static_cast<size_t>(world));
    testing::on_rank_threads(world, [&](int rank) {
      if (rank == 0)
        broadcast_request(*group[0], m);
      else
        got[static_cast<size_t>(rank)] = receive_request(*group[rank]);
    });
    for (int r = 1; r < world; ++r) {
      const Message& g = got[static_cast<size_t>(r)];
      EXPECT_EQ(g.type, MessageType::kTrainPolicy);
      EXPECT_EQ(g.step, 7);
      EXPECT_EQ(g.weight_version, 3);
      EXPECT_EQ(g.scalar("kl_coef"), 0.25);
      EXPECT_EQ(g.strings.at("note"), "hello");
      EXPECT_TRUE(torch::equal(g.tensor("x"), m.tensor("x")));
      EXPECT_TRUE(torch::equal(g.tensor("ids"), m.tensor("ids")));
    }
  }
}

TEST(GroupRelay, EveryRankHandlesEveryRequestAndOnlyRankZeroReplies) {
  for (int world : {1, 2, 3}) {
    auto group = make_thread_group(world, 5s);
    const std::string endpoint = "inproc://group-relay-" + std::to_string(world);
    Server server(endpoint);
    std::mutex mutex;
    std::vector<std::vector<int64_t>> seen(static_cast<size_t>(world));
    std::atomic<bool> done{false};
    std::thread client_thread([&] {
      Client client("group", endpoint);
      for (int64_t i = 1; i <= 3; ++i) {
        Message request(MessageType::kValues);
        request.step = i;
        request.tensors = {{"x", torch::full({2}, static_cast<float>(i))}};
        const Message reply = client.call(request, 30s);
        EXPECT_EQ(reply.scalar("rank"), 0.0);  // rank 0's reply, never another's
        EXPECT_EQ(reply.scalar("sum"), 2.0 * static_cast<double>(i));
      }
      std::this_thread::sleep_for(300ms);  // idle: heartbeats (every 50 ms) keep the others inside their 5 s deadline
      client.call(Message(MessageType::kShutdown), 30s);
      done = true;
    });
    testing::on_rank_threads(world, [&](int rank) {
      Handler handler = [&, rank](const Message& m) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          seen[static_cast<size_t>(rank)].push_back(m.step);
        }
        Message reply;
        reply.scalars["rank"] = rank;
        reply.scalars["sum"] = m.tensor("x").sum().item<double>();
        return reply;
      };
      serve_group(*group[rank], rank == 0 ? &server : nullptr, handler, ServeOptions{}, 50ms);
    });
    client_thread.join();
    EXPECT_TRUE(done);
    for (int r = 0; r < world; ++r) EXPECT_EQ(seen[static_cast<size_t>(r)], (std::vector<int64_t>{1, 2, 3})) << r;
  }
}

TEST(GroupRelay, ARankWaitingForAGoneRootTimesOut) {
  auto group = make_thread_group(2, 300ms);
  EXPECT_THROW(receive_request(*group[1]), TimeoutError);
}

}  // namespace
}  // namespace troupe::distributed
