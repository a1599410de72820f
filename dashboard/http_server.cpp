// Implementation of dashboard/http_server.h: a poll(2) loop over a listening socket and its connections.
#include "dashboard/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace troupe::dashboard {
namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  std::string in;              // the request head as it arrives
  std::string out;             // the response, once there is one
  size_t sent = 0;             // bytes of `out` written
  Clock::time_point deadline;  // dropped when passed
  bool writing = false;
};

int bind_listener(const HttpServerOptions& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string where = fmt::format("{}:{}", o.host, o.port);
  if (const int rc = getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &found); rc != 0)
    throw IoError("dashboard: cannot resolve " + where + ": " + gai_strerror(rc));
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) throw IoError("dashboard: cannot listen on " + where + ": " + error);
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw IoError(std::string("dashboard: getsockname: ") + std::strerror(errno));
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  int listener = -1;
  int port = 0;
  std::vector<Connection> connections;

  void accept_all();
  // Reads what has arrived; answers once the head is complete. False when the connection is to be closed.
  bool read_request(Connection& c);
  bool write_response(Connection& c);  // false once everything was written, or the peer went away
  void respond(Connection& c, const HttpResponse& response, bool head_only);
  HttpResponse answer(const std::string& head, bool& head_only);
};

HttpServer::HttpServer(const HttpServerOptions& options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->handler = std::move(handler);
  impl_->listener = bind_listener(options);
  impl_->port = bound_port(impl_->listener);
}

HttpServer::~HttpServer() {
  for (auto& c : impl_->connections) close(c.fd);
  close(impl_->listener);
}

int HttpServer::port() const { return impl_->port; }
size_t HttpServer::open_connections() const { return impl_->connections.size(); }

// accept4 on the non-blocking listener returns EAGAIN once the backlog is empty: never waits.
void HttpServer::Impl::accept_all() {
  while (true) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN (nothing more), or a connection that was reset before we took it
    Connection c;
    c.fd = fd;
    c.deadline = Clock::now() + options.read_timeout;
    if (connections.size() >= options.max_connections) {
      respond(c, error_response(503, "too many connections"), false);
      write_response(c);  // best effort on a fresh socket; it is closed either way
      close(fd);
      continue;
    }
    connections.push_back(std::move(c));
  }
}

HttpResponse HttpServer::Impl::answer(const std::string& head, bool& head_only) {
  try {
    const HttpRequest request = parse_request_head(head);
    head_only = request.method == "HEAD";
    return handler(request);
  } catch (const HttpError& e) {
    return error_response(e.status(), e.what());
  } catch (const std::exception& e) {
    spdlog::warn("dashboard: {}", e.what());
    return error_response(500, e.what());
  }
}

void HttpServer::Impl::respond(Connection& c, const HttpResponse& response, bool head_only) {
  c.out = serialize_response(response, head_only);
  c.sent = 0;
  c.writing = true;
  c.deadline = Clock::now() + options.write_timeout;
}

// recv on a non-blocking socket that poll reported readable: returns what is there, EAGAIN otherwise.
bool HttpServer::Impl::read_request(Connection& c) {
  char buf[4096];
  while (true) {
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) return false;  // the peer closed before sending a whole request
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos && c.in.size() > options.max_request_bytes) {
      respond(c, error_response(431, fmt::format("request head over {} bytes", options.max_request_bytes)), false);
      return true;
    }
    if (end != std::string::npos) {
      if (end > options.max_request_bytes) {
        respond(c, error_response(431, fmt::format("request head over {} bytes", options.max_request_bytes)), false);
        return true;
      }
      bool head_only = false;
      const HttpResponse response = answer(c.in.substr(0, end), head_only);
      respond(c, response, head_only);
      return true;
    }
  }
}

bool HttpServer::Impl::write_response(Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  return false;
}

void HttpServer::poll_once(std::chrono::milliseconds wait) {
  auto& self = *impl_;
  const auto now = Clock::now();
  auto timeout = wait;
  std::vector<pollfd> fds{{self.listener, POLLIN, 0}};
  for (const auto& c : self.connections) {
    fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now);
    timeout = std::max(std::chrono::milliseconds(0), std::min(timeout, left));
  }
  const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) throw IoError(std::string("dashboard: poll: ") + std::strerror(errno));
  std::vector<Connection> kept;
  for (size_t i = 0; i < self.connections.size(); ++i) {
    Connection& c = self.connections[i];
    const short events = ready > 0 ? fds[i + 1].revents : 0;
    bool keep = true;
    if (events & (POLLERR | POLLNVAL)) {
      keep = false;
    } else if (!c.writing && (events & (POLLIN | POLLHUP))) {
      keep = self.read_request(c);
    }
    if (keep && c.writing && (events & POLLOUT || c.sent == 0)) keep = self.write_response(c);
    if (keep && Clock::now() > c.deadline) keep = false;  // a stalled client: dropped
    if (keep) {
      kept.push_back(std::move(c));
    } else {
      close(c.fd);
    }
  }
  self.connections = std::move(kept);
  if (ready > 0 && (fds[0].revents & POLLIN)) self.accept_all();
}

void HttpServer::serve(const std::function<bool()>& should_stop, std::chrono::milliseconds tick) {
  while (!should_stop()) poll_once(tick);
}

}  // namespace troupe::dashboard
