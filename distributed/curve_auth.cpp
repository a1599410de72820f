// Implementation of distributed/curve_auth.h over ZeroMQ's C API. The ZAP protocol is RFC 27
// (https://rfc.zeromq.org/spec/27/): a request is [version "1.0", request id, domain, address, routing id,
// mechanism, credentials...], a reply [version, request id, status code, status text, user id, metadata].
#include "distributed/curve_auth.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "distributed/checked_call.h"
#include "distributed/transport.h"

namespace troupe::distributed::detail {

// Refusal lines, at most one per kRefusalLogInterval per server: a misconfigured client reconnects every ~100 ms
// and must not flood the log. A suppressed refusal is counted and the count is logged with the next line.
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

class RefusalLog {
 public:
  void warn(const std::string& line) {
    const auto now = std::chrono::steady_clock::now();
    if (logged_ && now - last_ < kRefusalLogInterval) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) {
      spdlog::warn("{} ({} more refusals in the last {} s not logged)", line, suppressed_,
                   std::chrono::duration_cast<std::chrono::seconds>(now - last_).count());
    } else {
      spdlog::warn("{}", line);
    }
    logged_ = true;
    last_ = now;
    suppressed_ = 0;
  }

 private:
  bool logged_ = false;
  std::chrono::steady_clock::time_point last_;
  uint64_t suppressed_ = 0;
};

namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr int kZapPollMs = 50;    // how often the handler thread checks that it should stop
constexpr size_t kZapFrames = 8;  // a CURVE request has 7 frames; more are read and dropped

struct ZapDomain {
  std::array<uint8_t, 32> client_key{};  // the one client public key this domain accepts
  std::string label;                     // the server's endpoint, for log lines
  RefusalLog refusals;                   // used by the handler thread only
};

// The process's ZAP handler: its thread runs while at least one ZapRegistration lives.
class ZapHandler {
 public:
  static ZapHandler& instance() {
    static auto* handler = new ZapHandler();  // leaked like the ZeroMQ context it uses (transport.h)
    return *handler;
  }

  std::string add(const std::array<uint8_t, 32>& key, const std::string& label) {
    std::lock_guard<std::mutex> life(lifecycle_);
    if (users_ == 0) start();  // may throw: nothing is registered yet
    ++users_;
    std::lock_guard<std::mutex> lock(domains_mutex_);
    const std::string domain = fmt::format("troupe-{}", next_domain_++);
    domains_[domain] = ZapDomain{key, label, {}};
    return domain;
  }

  void remove(const std::string& domain) {
    std::lock_guard<std::mutex> life(lifecycle_);
    {
      std::lock_guard<std::mutex> lock(domains_mutex_);
      domains_.erase(domain);
    }
    if (--users_ == 0) {
      stop_ = true;
      thread_.join();  // the thread unbinds and closes its socket before it ends
    }
  }

  void relabel(const std::string& domain, const std::string& label) {
    std::lock_guard<std::mutex> lock(domains_mutex_);
    if (auto it = domains_.find(domain); it != domains_.end()) it->second.label = label;
  }

 private:
  // Binds the ZAP endpoint on this thread (so it is bound before the caller binds its server), then hands the
  // socket to the handler thread (the thread start is the memory barrier ZeroMQ asks for when a socket migrates).
  void start() {
    void* rep = TROUPE_ZMQ_PTR(zmq_socket(zmq_context_handle(), ZMQ_REP));
    const int zero = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(rep, kZapEndpoint) != 0) {
      const int err = zmq_errno();
      zmq_close(rep);
      throw IoError(
          fmt::format("CURVE: cannot bind the ZAP handler at {}: {} (is another ZAP handler running in this "
                      "process?)",
                      kZapEndpoint, zmq_strerror(err)));
    }
    stop_ = false;
    thread_ = std::thread([this, rep] { run(rep); });
  }

  void run(void* rep) {
    while (!stop_) {
      zmq_pollitem_t item{rep, 0, ZMQ_POLLIN, 0};
      const int rc = zmq_poll(&item, 1, kZapPollMs);
      if (rc <= 0) continue;  // timeout, or EINTR
      try {
        answer(rep);
      } catch (const std::exception& e) {
        spdlog::error("CURVE: the ZAP handler failed to answer a request: {}", e.what());
      }
    }
    zmq_unbind(rep, kZapEndpoint);  // synchronous for inproc: a new handler can bind at once
    zmq_close(rep);
  }

  static std::vector<std::string> receive_request(void* rep) {
    std::vector<std::string> frames;
    int more = 1;
    while (more != 0) {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      while (zmq_msg_recv(&msg, rep, 0) == -1) {
        if (zmq_errno() != EINTR) {
          zmq_msg_close(&msg);
          TROUPE_ZMQ(-1);
        }
      }
      if (frames.size() < kZapFrames)
        frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
      more = zmq_msg_more(&msg);
      zmq_msg_close(&msg);
    }
    return frames;
  }

  // "" when the client may connect, else why not; a refusal is logged (rate-limited per server).
  std::string check(const std::vector<std::string>& f) {
    const std::string address = f.size() > 3 ? f[3] : "?";
    std::lock_guard<std::mutex> lock(domains_mutex_);
    const auto it = f.size() > 2 ? domains_.find(f[2]) : domains_.end();
    const std::string why = refusal(f, it);
    if (!why.empty() && it != domains_.end()) {
      it->second.refusals.warn(fmt::format("{}: refused a client from {}: {}", it->second.label, address, why));
    } else if (!why.empty()) {
      unknown_domain_refusals_.warn(fmt::format("CURVE: refused a client from {}: {}", address, why));
    }
    return why;
  }

  std::string refusal(const std::vector<std::string>& f, std::map<std::string, ZapDomain>::iterator it) {
    if (f.size() < 6 || f[0] != "1.0") return "malformed ZAP request";
    if (it == domains_.end()) return "unknown ZAP domain '" + f[2] + "'";
    if (f[5] != "CURVE") return "mechanism " + f[5] + " instead of CURVE";
    if (f.size() != 7 || f[6].size() != 32) return "malformed CURVE credentials";
    if (std::memcmp(f[6].data(), it->second.client_key.data(), 32) != 0) {
      char z85[41] = {};
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(f[6].data()), 32);
      return fmt::format("client public key {} is not the run's client key", z85);
    }
    return "";
  }

  void answer(void* rep) {
    const std::vector<std::string> f = receive_request(rep);
    const std::string why = check(f);
    const std::string request_id = f.size() > 1 ? f[1] : "";
    const std::array<std::string, 6> reply = {"1.0", request_id, why.empty() ? "200" : "400", why.empty() ? "OK" : why,
                                              "",    ""};
    for (size_t i = 0; i < reply.size(); ++i) {
      const int flags = i + 1 < reply.size() ? ZMQ_SNDMORE : 0;
      while (zmq_send(rep, reply[i].data(), reply[i].size(), flags) == -1) {
        if (zmq_errno() != EINTR) TROUPE_ZMQ(-1);
      }
    }
  }

  std::mutex lifecycle_;      // serialises start/stop of the thread (held across join)
  std::mutex domains_mutex_;  // guards domains_ and next_domain_ (the handler thread takes only this one)
  std::map<std::string, ZapDomain> domains_;
  RefusalLog unknown_domain_refusals_;
  uint64_t next_domain_ = 0;
  int users_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::array<uint8_t, 32> decode_key(const std::string& z85) {
  std::array<uint8_t, 32> key{};
  if (z85.size() != 40 || zmq_z85_decode(key.data(), z85.c_str()) == nullptr)
    throw ConfigError("CURVE: a client public key must be 40 Z85 characters");
  return key;
}

std::string handshake_failure(uint16_t event, uint32_t value) {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return fmt::format("authentication refused (ZAP status {})", value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return fmt::format("handshake failed ({})", zmq_strerror(static_cast<int>(value)));
    default: break;
  }
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: return "the client does not use CURVE (mechanism mismatch)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "CURVE handshake could not be decrypted (the client has the wrong server key)";
    default: return fmt::format("protocol error 0x{:x} in the handshake", value);
  }
}

}  // namespace

ZapRegistration::ZapRegistration(const std::string& client_public_key, const std::string& label)
    : domain_(ZapHandler::instance().add(decode_key(client_public_key), label)) {}

ZapRegistration::~ZapRegistration() { ZapHandler::instance().remove(domain_); }

void ZapRegistration::set_label(const std::string& label) { ZapHandler::instance().relabel(domain_, label); }

HandshakeMonitor::HandshakeMonitor(void* socket, const std::string& name)
    : watched_(socket), label_(name), refusals_(std::make_unique<RefusalLog>()) {
  static std::atomic<uint64_t> counter{0};
  const std::string address = fmt::format("inproc://troupe-handshake-monitor-{}", counter++);
  const int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
  TROUPE_ZMQ(zmq_socket_monitor(watched_, address.c_str(), events));
  pair_ = zmq_socket(zmq_context_handle(), ZMQ_PAIR);
  if (pair_ == nullptr || zmq_connect(pair_, address.c_str()) != 0) {
    const int err = zmq_errno();
    if (pair_ != nullptr) zmq_close(pair_);
    zmq_socket_monitor(watched_, nullptr, 0);
    throw IoError(std::string("CURVE: cannot watch a server's handshakes: ") + zmq_strerror(err));
  }
  const int zero = 0;
  zmq_setsockopt(pair_, ZMQ_LINGER, &zero, sizeof(zero));
}

HandshakeMonitor::~HandshakeMonitor() {
  zmq_socket_monitor(watched_, nullptr, 0);  // stops the monitor before the PAIR end goes
  zmq_close(pair_);
}

void HandshakeMonitor::drain() {
  while (true) {
    zmq_msg_t event, address;
    zmq_msg_init(&event);
    if (zmq_msg_recv(&event, pair_, ZMQ_DONTWAIT) == -1) {
      zmq_msg_close(&event);
      return;
    }
    uint16_t id = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&event) >= 6) {
      std::memcpy(&id, zmq_msg_data(&event), 2);
      std::memcpy(&value, static_cast<const char*>(zmq_msg_data(&event)) + 2, 4);
    }
    const bool more = zmq_msg_more(&event) != 0;
    zmq_msg_close(&event);
    std::string where;
    if (more) {
      zmq_msg_init(&address);
      if (zmq_msg_recv(&address, pair_, ZMQ_DONTWAIT) != -1)
        where.assign(static_cast<const char*>(zmq_msg_data(&address)), zmq_msg_size(&address));
      zmq_msg_close(&address);
    }
    (void)where;  // ZeroMQ's (version 1) monitor gives the bound endpoint here, not the peer's address
    refusals_->warn(
        fmt::format("{}: refused a connection: {} (ZeroMQ does not report the peer's address for a "
                    "handshake that fails before authentication)",
                    label_, handshake_failure(id, value)));
  }
}

}  // namespace troupe::distributed::detail
