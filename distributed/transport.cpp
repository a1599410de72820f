// Implementation of distributed/transport.h over ZeroMQ's C API (each call checked by TROUPE_ZMQ); cppzmq is used
// only for zmq::message_t, which Frames (distributed/message.h) are turned into and out of here, zero-copy.
#include "distributed/transport.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>
#include <zmq.hpp>
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include "core/progress.h"
#include "core/signals.h"
#include "distributed/checked_call.h"
#include "distributed/curve_auth.h"

namespace troupe::distributed {

namespace {

using Clock = std::chrono::steady_clock;

// Queue bound per socket and direction, in frames (not messages): far above what request/reply keeps in flight
// (a message is 1 + tensors frames, at most 4097), low enough that a peer that stopped reading cannot make a
// sender queue without end.
constexpr int kHighWaterMark = 100000;
// A blocking send (queue full) gives up after this long with TimeoutError instead of hanging.
constexpr int kSendTimeoutMs = 10000;

void set_int(void* socket, int option, int value) { TROUPE_ZMQ(zmq_setsockopt(socket, option, &value, sizeof(value))); }

// A Z85 key option (ZMQ_CURVE_*KEY): ZeroMQ takes the 40 characters plus the terminating NUL.
void set_key(void* socket, int option, const std::string& z85) {
  TROUPE_ZMQ(zmq_setsockopt(socket, option, z85.c_str(), z85.size() + 1));
}

void require_handshake(const std::string& endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0)
    throw ConfigError("transport: CURVE does not apply to " + endpoint +
                      " (inproc has no handshake); use it for tcp:// and ipc:// endpoints");
}

// Frames beyond the largest allowed header or tensor make ZeroMQ drop the connection before buffering them.
void set_max_message_size(void* socket, const DecodeLimits& limits) {
  const auto max = static_cast<int64_t>(std::max<uint64_t>(limits.max_tensor_bytes, limits.max_header_bytes));
  TROUPE_ZMQ(zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max, sizeof(max)));
}

// True when `socket` has a message to read before `deadline`; a signal interrupting the poll is not an error.
bool wait_readable(void* socket, Clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    zmq_pollitem_t item{socket, 0, ZMQ_POLLIN, 0};
    const int rc = zmq_poll(&item, 1, static_cast<long>(std::max<int64_t>(0, left)));
    if (rc == -1 && zmq_errno() == EINTR) {
      if (Clock::now() >= deadline) return false;
      continue;
    }
    detail::check_zmq(rc, "zmq_poll(socket, ZMQ_POLLIN)", __FILE__, __LINE__);
    if (rc > 0) return true;
    if (Clock::now() >= deadline) return false;
  }
}

// All frames of the next message (ZeroMQ delivers a multipart message whole, so after the first frame the others
// are there). Keeps at most `max_frames`; the rest are read and discarded, so decode sees a count mismatch
// without this side holding an unbounded number of frames.
std::vector<zmq::message_t> receive_messages(void* socket, size_t max_frames) {
  std::vector<zmq::message_t> frames;
  zmq::message_t discard;
  bool more = true;
  while (more) {
    zmq::message_t& frame = frames.size() < max_frames ? frames.emplace_back() : discard;
    while (zmq_msg_recv(frame.handle(), socket, 0) == -1) {
      if (zmq_errno() != EINTR) detail::check_zmq(-1, "zmq_msg_recv(frame, socket, 0)", __FILE__, __LINE__);
    }
    more = TROUPE_ZMQ(zmq_msg_more(frame.handle())) != 0;
  }
  return frames;
}

// ThreadSanitizer cannot see the happens-before edge that libzmq's lock-free queues give a message on its way from
// the sending thread to its I/O thread and to the receiving thread (libzmq is not instrumented). With zero-copy
// frames the receiver reads, and the I/O thread frees, memory the sender wrote: these annotations state that edge
// (release when a frame is handed to ZeroMQ, acquire where it comes out), so TSan reports only real races.
#if defined(__SANITIZE_THREAD__)
void handed_to_zmq(const void* address) { __tsan_release(const_cast<void*>(address)); }
void taken_from_zmq(const void* address) { __tsan_acquire(const_cast<void*>(address)); }
#else
void handed_to_zmq(const void*) {}
void taken_from_zmq(const void*) {}
#endif

// A Frame over a received ZeroMQ message (which the frame then owns): no copy.
Frame to_frame(zmq::message_t&& message) {
  auto owned = std::make_shared<zmq::message_t>(std::move(message));
  taken_from_zmq(owned->data());
  return Frame(owned->data(), owned->size(), owned);
}

std::vector<Frame> receive_frames(void* socket, size_t max_frames) {
  std::vector<Frame> frames;
  for (auto& m : receive_messages(socket, max_frames)) frames.push_back(to_frame(std::move(m)));
  return frames;
}

// A ZeroMQ message over a Frame's bytes: no copy; the heap copy of the frame keeps its owner (a tensor's storage)
// alive until ZeroMQ calls the free function, possibly from its I/O thread (shared_ptr counts are atomic).
zmq::message_t to_message(Frame&& frame) {
  if (frame.size() == 0) return zmq::message_t();
  auto* hold = new Frame(std::move(frame));
  void* data = const_cast<void*>(hold->data());
  const size_t size = hold->size();
  handed_to_zmq(data);  // after the last access to *hold on this thread
  handed_to_zmq(hold);
  try {
    return zmq::message_t(
        data, size,
        [](void*, void* hint) {
          taken_from_zmq(hint);
          delete static_cast<Frame*>(hint);
        },
        hold);
  } catch (...) {
    delete hold;  // zmq_msg_init_data failed (ENOMEM) without taking ownership
    throw;
  }
}

enum class SendResult { kSent, kPeerGone, kQueueFull };

// Sends `frames` as one multipart message. kPeerGone when a ROUTER (ZMQ_ROUTER_MANDATORY) no longer knows the
// first frame's identity; kQueueFull when the queue stayed full for kSendTimeoutMs.
SendResult send_frames(void* socket, std::vector<zmq::message_t>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const int flags = i + 1 < frames.size() ? ZMQ_SNDMORE : 0;
    int rc = 0;
    while ((rc = zmq_msg_send(frames[i].handle(), socket, flags)) == -1 && zmq_errno() == EINTR) {
    }
    if (rc == -1 && zmq_errno() == EHOSTUNREACH) return SendResult::kPeerGone;
    if (rc == -1 && zmq_errno() == EAGAIN) return SendResult::kQueueFull;
    detail::check_zmq(rc, "zmq_msg_send(frame, socket, flags)", __FILE__, __LINE__);
  }
  return SendResult::kSent;
}

Message error_message(const std::string& text) {
  Message m;
  m.type = MessageType::kError;
  m.strings["error"] = text;
  return m;
}

}  // namespace

static zmq::context_t& zmq_context() {
  static auto* context = new zmq::context_t();  // leaked on purpose: see the header
  return *context;
}

void* zmq_context_handle() { return zmq_context().handle(); }

namespace {
// Bumped by SIGUSR2 once drop_sockets_on_sigusr2 has armed it; a socket opened in an earlier epoch is dropped.
std::atomic<uint64_t> g_socket_epoch{0};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the signal handler needs a lock-free counter");
extern "C" void on_drop_signal(int) { g_socket_epoch.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

void drop_sockets_on_sigusr2() { core::install_handler(SIGUSR2, on_drop_signal); }

namespace detail {

bool Socket::dropped() {
  if (handle_ != nullptr && epoch_ != g_socket_epoch.load(std::memory_order_relaxed)) {
    spdlog::warn("fault injection: dropping a ZeroMQ socket (SIGUSR2)");
    zmq_close(handle_);
    handle_ = nullptr;
  }
  return handle_ == nullptr;
}

Socket::Socket(int type)
    : handle_(TROUPE_ZMQ_PTR(zmq_socket(zmq_context().handle(), type))),
      epoch_(g_socket_epoch.load(std::memory_order_relaxed)) {
  try {
    set_int(handle_, ZMQ_LINGER, 0);  // close drops unsent messages at once: teardown never waits on a peer
    set_int(handle_, ZMQ_SNDHWM, kHighWaterMark);
    set_int(handle_, ZMQ_RCVHWM, kHighWaterMark);
    set_int(handle_, ZMQ_SNDTIMEO, kSendTimeoutMs);
  } catch (...) {
    zmq_close(handle_);
    throw;
  }
}

Socket::~Socket() {
  if (handle_ != nullptr) zmq_close(handle_);  // cannot fail on a valid socket; destructors must not throw
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) zmq_close(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    epoch_ = other.epoch_;
  }
  return *this;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------------------
// Server

Server::Server(const std::string& endpoint, const DecodeLimits& limits, const std::optional<CurveKeys>& curve)
    : socket_(ZMQ_ROUTER), limits_(limits) {
  set_int(socket_.get(), ZMQ_ROUTER_MANDATORY, 1);  // a reply to an unknown peer fails (EHOSTUNREACH), not vanishes
  set_max_message_size(socket_.get(), limits_);
  if (curve) {
    require_handshake(endpoint);
    // The ZAP handler is live before the bind: libzmq lets every client in when no handler is bound.
    zap_ = std::make_unique<detail::ZapRegistration>(curve->client.public_key, endpoint);
    TROUPE_ZMQ(zmq_setsockopt(socket_.get(), ZMQ_ZAP_DOMAIN, zap_->domain().data(), zap_->domain().size()));
    set_int(socket_.get(), ZMQ_CURVE_SERVER, 1);
    set_key(socket_.get(), ZMQ_CURVE_SECRETKEY, curve->server.secret_key);
    monitor_ = std::make_unique<detail::HandshakeMonitor>(socket_.get(), endpoint);
  }
  TROUPE_ZMQ(zmq_bind(socket_.get(), endpoint.c_str()));
  char resolved[1024] = {};
  size_t size = sizeof(resolved);
  TROUPE_ZMQ(zmq_getsockopt(socket_.get(), ZMQ_LAST_ENDPOINT, resolved, &size));
  endpoint_ = resolved;
  if (zap_) zap_->set_label(endpoint_);
  if (monitor_) monitor_->set_label(endpoint_);
}

// Members go in reverse order: the monitor stops before the socket closes, the ZAP domain after.
Server::~Server() = default;

bool Server::wait_for_request(Clock::time_point deadline) {
  if (!monitor_) return wait_readable(socket_.get(), deadline);
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    zmq_pollitem_t items[2] = {{socket_.get(), 0, ZMQ_POLLIN, 0}, {monitor_->pair(), 0, ZMQ_POLLIN, 0}};
    const int rc = zmq_poll(items, 2, static_cast<long>(std::max<int64_t>(0, left)));
    if (rc == -1 && zmq_errno() != EINTR) detail::check_zmq(rc, "zmq_poll(server, monitor)", __FILE__, __LINE__);
    if (rc > 0 && (items[1].revents & ZMQ_POLLIN) != 0) monitor_->drain();
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN) != 0) return true;
    if (Clock::now() >= deadline) return false;
  }
}

void Server::reject(const std::string& peer, uint64_t request_id, const std::string& why) {
  spdlog::warn("{}: rejected a request: {}", endpoint_, why);
  Message error = error_message(why);
  error.request_id = request_id;
  send_to(peer, error);
}

std::optional<Incoming> Server::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (socket_.dropped()) {
    std::this_thread::sleep_until(deadline);
    return std::nullopt;
  }
  while (wait_for_request(deadline)) {
    // Frame 0 is the routing identity the ROUTER socket prepends; the client's frames follow.
    auto frames = receive_frames(socket_.get(), limits_.max_tensors + 3);
    Incoming in;
    in.peer = frames.front().to_string();
    frames.erase(frames.begin());
    const auto id = frames.empty() ? std::nullopt : peek_request_id(frames.front());
    try {
      in.message = decode(std::move(frames), limits_);
    } catch (const ProtocolError& e) {
      reject(in.peer, id.value_or(0), e.what());
      continue;
    }
    // A connection delivers in order and a Client numbers its requests 1, 2, ...: an id that does not increase is
    // a replay (or a forgery), never a Client's own retry.
    uint64_t& last = last_request_id_[in.peer];
    if (in.message.request_id <= last) {
      reject(in.peer, in.message.request_id,
             fmt::format("request id {} is not above {}, the last one from this client: a replayed request",
                         in.message.request_id, last));
      continue;
    }
    last = in.message.request_id;
    return in;
  }
  return std::nullopt;
}

void Server::reply(const Incoming& to, Message reply) {
  reply.request_id = to.message.request_id;
  send_to(to.peer, reply);
}

void Server::send_to(const std::string& peer, const Message& reply) {
  if (socket_.dropped()) return;
  std::vector<zmq::message_t> frames;
  frames.reserve(reply.tensors.size() + 2);
  frames.emplace_back(peer.data(), peer.size());
  for (auto& frame : encode(reply)) frames.push_back(to_message(std::move(frame)));
  const SendResult sent = send_frames(socket_.get(), frames);
  if (sent == SendResult::kPeerGone)
    spdlog::warn("{}: client disconnected; reply to request {} dropped", endpoint_, reply.request_id);
  if (sent == SendResult::kQueueFull)
    throw TimeoutError(fmt::format("{}: reply queue stayed full for {} ms", endpoint_, kSendTimeoutMs));
}

// ---------------------------------------------------------------------------------------------------------------
// Client

Client::Client(std::string name, const std::string& endpoint, const DecodeLimits& limits,
               const std::optional<CurveKeys>& curve)
    : name_(std::move(name)), endpoint_(endpoint), limits_(limits), socket_(ZMQ_DEALER) {
  set_max_message_size(socket_.get(), limits_);
  if (curve) {
    require_handshake(endpoint);
    set_key(socket_.get(), ZMQ_CURVE_SERVERKEY, curve->server.public_key);
    set_key(socket_.get(), ZMQ_CURVE_PUBLICKEY, curve->client.public_key);
    set_key(socket_.get(), ZMQ_CURVE_SECRETKEY, curve->client.secret_key);
  }
  TROUPE_ZMQ(zmq_connect(socket_.get(), endpoint.c_str()));
}

std::string Client::describe() const { return fmt::format("{} ({})", name_, endpoint_); }

uint64_t Client::send(Message request) {
  const uint64_t id = next_id_++;
  request.request_id = id;
  if (socket_.dropped()) {  // lost, as on a partitioned network: the caller's deadline reports it
    outstanding_[id] = request.type;
    return id;
  }
  std::vector<zmq::message_t> frames;
  for (auto& frame : encode(request)) frames.push_back(to_message(std::move(frame)));
  if (send_frames(socket_.get(), frames) != SendResult::kSent)
    throw TimeoutError(fmt::format("{}: send queue stayed full for {} ms", describe(), kSendTimeoutMs));
  outstanding_[id] = request.type;
  return id;
}

std::optional<Message> Client::try_receive(uint64_t request_id, std::chrono::milliseconds timeout) {
  const auto pending = outstanding_.find(request_id);
  if (pending == outstanding_.end())
    throw Error(fmt::format("{}: request {} is not outstanding", describe(), request_id));
  const MessageType request_type = pending->second;
  auto finish = [&](Message reply) {
    outstanding_.erase(request_id);
    if (reply.type == MessageType::kError)
      throw RemoteError(fmt::format("{}: request {} ({}) failed: {}", describe(), request_id, to_string(request_type),
                                    reply.strings["error"]));
    return reply;
  };
  if (auto it = arrived_.find(request_id); it != arrived_.end()) {
    Message reply = std::move(it->second);
    arrived_.erase(it);
    return finish(std::move(reply));
  }
  const auto deadline = Clock::now() + timeout;
  if (socket_.dropped()) {
    std::this_thread::sleep_until(deadline);
    return std::nullopt;
  }
  while (wait_readable(socket_.get(), deadline)) {
    Message reply = read_reply();
    if (reply.request_id == request_id) return finish(std::move(reply));
    keep(std::move(reply));
  }
  return std::nullopt;
}

bool Client::answered(uint64_t request_id) {
  if (arrived_.count(request_id) != 0) return true;
  if (socket_.dropped()) return false;
  while (wait_readable(socket_.get(), Clock::now())) keep(read_reply());
  return arrived_.count(request_id) != 0;
}

Message Client::read_reply() {
  try {
    return decode(receive_frames(socket_.get(), limits_.max_tensors + 2), limits_);
  } catch (const ProtocolError& e) {
    throw ProtocolError(fmt::format("{}: malformed reply: {}", describe(), e.what()));
  }
}

void Client::keep(Message reply) {
  if (outstanding_.count(reply.request_id) != 0) {
    arrived_.emplace(reply.request_id, std::move(reply));
  } else if (reply.type == MessageType::kError && reply.request_id == 0) {
    // The server could not even read which request this was (e.g. a protocol version mismatch).
    throw RemoteError(fmt::format("{}: rejected a request: {}", describe(), reply.strings["error"]));
  }
  // Otherwise: a late reply to a request abandoned after its timeout; dropped.
}

Message Client::receive(uint64_t request_id, std::chrono::milliseconds timeout) {
  if (auto reply = try_receive(request_id, timeout)) return std::move(*reply);
  const MessageType request_type = outstanding_.at(request_id);
  outstanding_.erase(request_id);
  throw TimeoutError(fmt::format("{}: no reply to request {} ({}) within {} ms; is the peer alive?", describe(),
                                 request_id, to_string(request_type), timeout.count()));
}

Message Client::call(Message request, std::chrono::milliseconds timeout) {
  const uint64_t id = send(std::move(request));
  return receive(id, timeout);
}

// ---------------------------------------------------------------------------------------------------------------
// serve

void serve(Server& server, const Handler& handler, const ServeOptions& options) {
  while (!(options.should_stop && options.should_stop())) {
    auto in = server.receive(options.poll_interval);
    if (!in) continue;
    const MessageType type = in->message.type;
    if (type == MessageType::kHeartbeat || type == MessageType::kShutdown) {
      server.reply(*in, Message{});
      if (type == MessageType::kShutdown) return;
      continue;
    }
    Message response;
    try {
      response = handler(in->message);
    } catch (const Interrupted& e) {
      server.reply(*in, error_message(e.what()));
      throw;
    } catch (const std::exception& e) {
      response = error_message(e.what());
    } catch (...) {
      response = error_message("unknown exception");
    }
    core::progress_tick();
    try {
      server.reply(*in, std::move(response));
    } catch (const ProtocolError& e) {  // the handler's reply cannot be encoded (e.g. a CUDA tensor)
      server.reply(*in, error_message(std::string("reply could not be sent: ") + e.what()));
    }
  }
}

}  // namespace troupe::distributed
