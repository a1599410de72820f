// Tests of dashboard/http_server.h over real loopback sockets: answers, oversized heads, stalled clients dropped
// while others are served, and the whole dashboard (token refusal, traversal) through the wire.
#include "dashboard/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "core/errors.h"
#include "dashboard/dashboard.h"
#include "tests/support/test_support.h"

namespace troupe::dashboard {
namespace {

using namespace std::chrono_literals;

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw IoError("connect failed");
  return fd;
}

// Everything the server sends until it closes, within 5 s.
std::string read_all(int fd) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
  throw TimeoutError("no end of response within 5 s");
}

std::string request(int port, const std::string& raw) {
  const int fd = connect_to(port);
  EXPECT_EQ(send(fd, raw.data(), raw.size(), MSG_NOSIGNAL), static_cast<ssize_t>(raw.size()));
  std::string out = read_all(fd);
  close(fd);
  return out;
}

// A server on its own thread until destroyed.
class Running {
 public:
  Running(const HttpServerOptions& o, HttpServer::Handler h) : server_(o, std::move(h)) {
    thread_ = std::thread([this] { server_.serve([this] { return stop_.load(); }, 20ms); });
  }
  ~Running() {
    stop_ = true;
    thread_.join();
  }
  int port() const { return server_.port(); }
  HttpServer& server() { return server_; }

 private:
  HttpServer server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

HttpResponse echo(const HttpRequest& r) {
  HttpResponse out;
  out.content_type = "text/plain";
  out.body = "path=" + r.path + " q=" + r.param("q");
  return out;
}

TEST(HttpServer, AnswersAndCloses) {
  Running s({}, echo);
  ASSERT_GT(s.port(), 0);
  const std::string r = request(s.port(), "GET /x?q=a%20b HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_EQ(r.substr(r.size() - 13), "path=/x q=a b");
  const std::string head = request(s.port(), "HEAD /x HTTP/1.1\r\n\r\n");
  EXPECT_NE(head.find("Content-Length: 10\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");  // no body
  EXPECT_EQ(request(s.port(), "DELETE / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(request(s.port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
}

TEST(HttpServer, RefusesOversizedHeads) {
  HttpServerOptions o;
  o.max_request_bytes = 1024;
  Running s(o, echo);
  const std::string r = request(s.port(), "GET /" + std::string(4000, 'a') + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r.substr(0, 100);
}

TEST(HttpServer, DropsStalledClientsAndServesOthers) {
  HttpServerOptions o;
  o.read_timeout = 300ms;
  Running s(o, echo);
  const int stalled = connect_to(s.port());
  ASSERT_EQ(send(stalled, "GET / HTT", 9, MSG_NOSIGNAL), 9);  // and nothing more
  // Another client is answered meanwhile.
  EXPECT_EQ(request(s.port(), "GET /y HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(read_all(stalled), "");  // closed without an answer once its deadline passed
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  close(stalled);
  EXPECT_TRUE(testing::wait_until([&] { return s.server().open_connections() == 0; }, 2000ms));
}

TEST(HttpServer, RefusesAnAddressInUse) {
  Running s({}, echo);
  HttpServerOptions o;
  o.port = s.port();
  EXPECT_THROW(HttpServer(o, echo), IoError);
}

TEST(Dashboard, ServesTheTokenedPageOverTheWire) {
  testing::ScratchDir dir("dashboard-wire");
  std::filesystem::create_directories(dir / "runs");
  DashboardOptions o;
  o.runs_dir = dir / "runs";
  o.port = 0;
  o.token = "tok";
  std::atomic<bool> stop{false};
  std::atomic<int> port{0};
  std::string url;
  std::thread t([&] {
    serve_dashboard(
        o,
        [&](const std::string& u) {
          url = u;
          port = std::stoi(u.substr(u.rfind(':') + 1));
        },
        [&] { return stop.load(); });
  });
  ASSERT_TRUE(testing::wait_until([&] { return port.load() > 0; }, 5000ms));
  EXPECT_EQ(url, "http://127.0.0.1:" + std::to_string(port.load()) + "/?token=tok");
  EXPECT_EQ(request(port, "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 403", 0), 0u);
  const std::string page = request(port, "GET /?token=tok HTTP/1.1\r\n\r\n");
  EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(page.find("Set-Cookie: troupe_token_" + std::to_string(port.load()) + "=tok;"), std::string::npos);
  const std::string cookie = "Cookie: troupe_token_" + std::to_string(port.load()) + "=tok\r\n";
  EXPECT_EQ(request(port, "GET /api/runs HTTP/1.1\r\n" + cookie + "\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(request(port, "GET /../../etc/passwd HTTP/1.1\r\n" + cookie + "\r\n").rfind("HTTP/1.1 404", 0), 0u);
  stop = true;
  t.join();
}

TEST(Dashboard, RefusesRemoteHostsUnlessAllowed) {
  testing::ScratchDir dir("dashboard-remote");
  DashboardOptions o;
  o.runs_dir = dir.path();
  o.host = "0.0.0.0";
  EXPECT_THROW(serve_dashboard(
                   o, [](const std::string&) {}, [] { return true; }),
               ConfigError);
  o.host = "127.0.0.1";
  o.runs_dir = dir / "missing";
  EXPECT_THROW(serve_dashboard(
                   o, [](const std::string&) {}, [] { return true; }),
               ConfigError);
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_EQ(random_token().size(), 32u);
  EXPECT_NE(random_token(), random_token());
}

}  // namespace
}  // namespace troupe::dashboard
