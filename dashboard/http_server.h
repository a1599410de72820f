// A small HTTP/1.1 server over poll(2) for the dashboard: one thread, non-blocking sockets, one request per
// connection (answered, then closed), a deadline on every connection and a cap on request size. Not a general web
// server: GET/HEAD only, no TLS, no keep-alive, handlers run on the serving thread (they must be quick).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "dashboard/http.h"

namespace troupe::dashboard {

struct HttpServerOptions {
  std::string host = "127.0.0.1";                   // address to bind (a name or a numeric IPv4/IPv6 address)
  int port = 0;                                     // 0 = a free port the kernel picks (read it back with port())
  size_t max_request_bytes = 16 * 1024;             // cap on a request head; larger ones get 431 and are closed
  std::chrono::milliseconds read_timeout{10'000};   // the request head must arrive within this of the accept
  std::chrono::milliseconds write_timeout{30'000};  // the response must be taken within this (then dropped)
  size_t max_connections = 64;                      // more at once are answered 503 and closed
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds and listens. IoError naming host:port when the address cannot be resolved or bound.
  HttpServer(const HttpServerOptions& options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;  // the bound port (the kernel's choice when options.port was 0)

  // One round: waits at most `wait` for a socket to be ready, then accepts, reads, answers and writes what it can,
  // and drops connections past their deadline. A handler's HttpError becomes its status; any other exception a 500.
  void poll_once(std::chrono::milliseconds wait);
  // Rounds of poll_once until should_stop() returns true; it is checked at least every `tick`.
  void serve(const std::function<bool()>& should_stop, std::chrono::milliseconds tick = std::chrono::milliseconds(100));
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace troupe::dashboard
