// ZeroMQ request/reply between the controller (Client, a DEALER socket) and a worker role (Server, a ROUTER
// socket); the same code serves inproc://, ipc:// and tcp:// endpoints. Not the roles or the controller's
// schedule: this file only moves Messages and enforces deadlines.
//
// Liveness: a dead or stuck peer is detected by the requester's deadline. Every Client::receive takes a timeout
// and raises TimeoutError naming the peer when no reply came in time; there is no background heartbeat thread.
// A controller that wants to know an idle worker is alive sends kHeartbeat with a short deadline (serve()
// answers it without calling the handler). A server never waits on a client, so it needs no detection.
//
// Security: given the run's CurveKeys (distributed/curve_keys.h), a Server and its Clients speak ZeroMQ CURVE over
// tcp:// and ipc:// (every frame encrypted and authenticated; the Server accepts only the run's client key, checked
// by the process's ZAP handler in distributed/curve_auth.h, and logs each refused connection). Without keys they
// speak plaintext: fine on inproc:// and on loopback, a config error elsewhere (rlhf::PlacementSection::validate).
// Independently of CURVE a Server rejects a replayed request: per client connection, request ids must increase.
//
// Threading: a Server or Client (like the ZeroMQ socket it owns) is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/errors.h"
#include "distributed/curve_keys.h"
#include "distributed/message.h"

namespace troupe::distributed {

// The process-wide ZeroMQ context (inproc endpoints only connect within one context), as ZeroMQ's C API handle, for
// code that must speak ZeroMQ itself (the transport benchmark's raw peer and the transport's own tests). Created on
// first use and deliberately never terminated: zmq_ctx_term blocks until every socket is closed, and process exit
// must not hang on a socket some thread still holds. Nothing outside distributed/transport.cpp includes
// <zmq.hpp>.
void* zmq_context_handle();

// The peer answered a request with kError; what() is "<client name> (<endpoint>): request <id> (<type>)
// failed: <the remote error text>".
class RemoteError : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Owns one ZeroMQ socket (zmq_close on destruction; LINGER is 0, so that never blocks).
class Socket {
 public:
  explicit Socket(int type);
  ~Socket();
  Socket(Socket&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  void* get() const { return handle_; }
  // True once the socket has been dropped by fault injection (drop_sockets_on_sigusr2): the first call after the
  // signal closes it. A dropped socket neither sends nor receives.
  bool dropped();

 private:
  void* handle_ = nullptr;
  uint64_t epoch_ = 0;  // the fault-injection epoch it was opened in
};
class ZapRegistration;
class HandshakeMonitor;
}  // namespace detail

// A request as the server received it.
struct Incoming {
  std::string peer;  // ZeroMQ routing identity of the client that sent it
  Message message;
};

// The worker side: a ROUTER socket bound to one endpoint, answering requests from any number of clients.
class Server {
 public:
  // Binds to `endpoint`, e.g. "inproc://critic", "ipc:///tmp/run/critic.sock", "tcp://127.0.0.1:*" (any free
  // port). Throws IoError when the bind fails (address in use, bad endpoint). With `curve`, a CURVE server holding
  // curve->server.secret_key that accepts only clients holding curve->client (ConfigError for an inproc endpoint,
  // where ZeroMQ does no handshake and CURVE would silently not apply).
  explicit Server(const std::string& endpoint, const DecodeLimits& limits = {},
                  const std::optional<CurveKeys>& curve = std::nullopt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, read back with ZMQ_LAST_ENDPOINT ("tcp://127.0.0.1:40123" for a "*" port).
  const std::string& endpoint() const { return endpoint_; }

  // The next well-formed request, or nullopt when none arrived within `timeout`. A malformed one is answered
  // with a kError reply carrying the ProtocolError text (matched to its request id when the header prefix is
  // readable), and the wait goes on until the deadline. So is a replayed one: a request whose id is not above the
  // highest id already received from the same client connection (ZeroMQ routing identity) is answered with kError
  // and logged, never returned. Cost: one map entry (routing id -> last id) per client connection ever seen.
  std::optional<Incoming> receive(std::chrono::milliseconds timeout);

  // Sends `reply` to the client `to` came from, with to's request id. A reply to a client that has disconnected
  // is dropped (its own deadline reports the loss); TimeoutError if the send queue stays full for 10 s.
  void reply(const Incoming& to, Message reply);

 private:
  void send_to(const std::string& peer, const Message& reply);
  bool wait_for_request(std::chrono::steady_clock::time_point deadline);
  void reject(const std::string& peer, uint64_t request_id, const std::string& why);

  std::unique_ptr<detail::ZapRegistration> zap_;  // CURVE: this server's ZAP domain (registered before the bind)
  detail::Socket socket_;
  std::unique_ptr<detail::HandshakeMonitor> monitor_;  // CURVE: logs handshakes refused before ZAP
  std::string endpoint_;
  DecodeLimits limits_;
  std::map<std::string, uint64_t> last_request_id_;  // client routing identity -> highest request id received
};

// The controller side: a DEALER socket connected to one server. Several requests may be outstanding at once;
// their replies may come back in any order.
class Client {
 public:
  // `name` says who the peer is in error messages ("critic rank 0"). Connecting never blocks: ZeroMQ connects
  // (and reconnects) in the background and queues requests meanwhile. With `curve`, a CURVE client that trusts only
  // the server holding curve->server's secret key and proves it holds curve->client's; a server that refuses it
  // (wrong keys) never answers, so its requests end in TimeoutError.
  Client(std::string name, const std::string& endpoint, const DecodeLimits& limits = {},
         const std::optional<CurveKeys>& curve = std::nullopt);

  const std::string& name() const { return name_; }
  const std::string& endpoint() const { return endpoint_; }

  // Assigns the next request id (1, 2, ...) to `request`, queues it and returns the id. Cost: no copy of the
  // tensors (zero-copy frames); they must not be modified in place until the reply has arrived.
  uint64_t send(Message request);

  // The reply to request `request_id`. Replies to other outstanding requests that arrive meanwhile are kept for
  // their own receive. Throws TimeoutError naming the peer when none came within `timeout` (the request is then
  // abandoned and a late reply is dropped), RemoteError when the peer answered kError, ProtocolError for a
  // malformed reply, and Error for an id that is not outstanding.
  Message receive(uint64_t request_id, std::chrono::milliseconds timeout);
  // As receive, but nullopt when no reply came within `timeout`, and the request stays outstanding: a caller can
  // wait in slices and check something else (e.g. that the worker process is alive) in between.
  std::optional<Message> try_receive(uint64_t request_id, std::chrono::milliseconds timeout);

  // send + receive.
  Message call(Message request, std::chrono::milliseconds timeout);

  // Whether the reply to outstanding request `request_id` has arrived (it stays for receive to hand out). Never
  // blocks: reads whatever replies are waiting on the socket first. Lets a caller tell a peer that still owes a reply
  // from one whose reply is merely not collected yet.
  bool answered(uint64_t request_id);

 private:
  std::string describe() const;  // "<name> (<endpoint>)"
  Message read_reply();          // one reply from the socket (ready to read); ProtocolError naming us when malformed
  // Files a reply no caller is waiting for right now: kept for its receive when outstanding, dropped when late;
  // RemoteError for an error the server could not match to a request.
  void keep(Message reply);

  std::string name_;
  std::string endpoint_;
  DecodeLimits limits_;
  detail::Socket socket_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, MessageType> outstanding_;  // sent, no reply handed out yet -> request type
  std::map<uint64_t, Message> arrived_;          // replies received before their receive() asked for them
};

// Fault injection for the chaos harness (tests/cli/chaos_test.py, bench/chaos.sh): after this call, SIGUSR2 makes
// the process drop every ZeroMQ socket it holds at that moment, as a network partition would. A dropped Server
// receives nothing more and sends no replies, a dropped Client's requests are lost and no reply arrives; sockets
// opened later work (so a controller that recovers by reconnecting can). The process stays alive and keeps beating:
// only the progress heartbeat (distributed/heartbeat.h) reveals it. Troupe arms it only when TROUPE_CHAOS=1 is set.
void drop_sockets_on_sigusr2();

// Answers one request: the reply's type is usually kReply (serve sets its request id).
using Handler = std::function<Message(const Message&)>;

struct ServeOptions {
  std::chrono::milliseconds poll_interval{50};  // how often `should_stop` is checked while idle
  std::function<bool()> should_stop;            // ends the loop when it returns true (checked between requests)
};

// The worker loop: receive -> handler -> reply until a kShutdown request (answered with kReply, then the loop
// ends) or until options.should_stop() holds. kHeartbeat is answered with kReply without calling the handler.
// An exception from the handler becomes a kError reply with its text and the loop goes on, except
// troupe::Interrupted (SIGINT/SIGTERM), which is answered and then rethrown.
void serve(Server& server, const Handler& handler, const ServeOptions& options = {});

}  // namespace troupe::distributed
