// The server half of CURVE authentication for distributed/transport.cpp: the process's one ZAP handler (a thread
// answering libzmq's authentication requests on inproc://zeromq.zap.01 for every CURVE Server of the process, each
// under its own ZAP domain) and a handshake monitor that logs connections refused before ZAP is asked (a client
// without CURVE, or with the wrong server key). Not key handling (distributed/curve_keys.h) and not the sockets
// that move messages.
#pragma once

#include <memory>
#include <string>

namespace troupe::distributed::detail {

// One CURVE server's entry with the ZAP handler: while it lives, a handshake in ZAP domain `domain()` succeeds only
// for the client public key it was given, and refusals are logged with the peer's address and the reason (at most
// one line per server per 10 s, with a count of those left out). The
// first registration of the process binds the ZAP endpoint and starts the handler thread (before it returns, so a
// server bound afterwards is never unauthenticated: libzmq lets every client in when no ZAP handler is bound); the
// last one to go stops and joins it (within one poll interval, 50 ms).
class ZapRegistration {
 public:
  // `client_public_key`: Z85 (40 characters). `label` names the server in log lines (its endpoint).
  ZapRegistration(const std::string& client_public_key, const std::string& label);
  ~ZapRegistration();
  ZapRegistration(const ZapRegistration&) = delete;
  ZapRegistration& operator=(const ZapRegistration&) = delete;

  const std::string& domain() const { return domain_; }
  // The label once the endpoint is known (after bind: "tcp://127.0.0.1:40123").
  void set_label(const std::string& label);

 private:
  std::string domain_;
};

class RefusalLog;

// Watches one socket's handshake failures (zmq_socket_monitor over a PAIR socket); drain() logs each one with the
// server's endpoint and the reason ZeroMQ gives (at most one line per 10 s, with a count of those left out). Owned
// and drained by the thread that uses the watched socket.
class HandshakeMonitor {
 public:
  HandshakeMonitor(void* socket, const std::string& name);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  void* pair() const { return pair_; }  // readable when an event is waiting
  void set_label(const std::string& label) { label_ = label; }
  // Logs every event already queued; never blocks.
  void drain();

 private:
  void* watched_ = nullptr;
  void* pair_ = nullptr;
  std::string label_;
  std::unique_ptr<RefusalLog> refusals_;  // at most one line per 10 s
};

}  // namespace troupe::distributed::detail
