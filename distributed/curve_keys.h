// A run's ZeroMQ CURVE keys: one server keypair (every worker's Server) and one client keypair (the controller's
// Clients), generated once per run and kept in one Z85 text file of mode 0600 in the run directory, which worker
// processes find through the TROUPE_CURVE_KEYS environment variable (never on a command line). Not the transport:
// distributed/transport.h takes these keys and does the handshake and authentication.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace troupe::distributed {

// Environment variable naming the key file for a worker process (set by the launcher, distributed/worker_launch.h).
constexpr const char* kCurveKeysEnv = "TROUPE_CURVE_KEYS";

struct CurveKeyPair {
  std::string public_key;  // 40 Z85 characters (32 bytes)
  std::string secret_key;  // 40 Z85 characters (32 bytes)
};

struct CurveKeys {
  CurveKeyPair server;  // the workers' Servers prove they hold server.secret_key
  CurveKeyPair client;  // the only client key a Server accepts (its ZAP check); the controller's Clients hold it
};

// Two fresh keypairs from zmq_curve_keypair (libsodium's randombytes). IoError when libzmq was built without CURVE.
CurveKeys generate_curve_keys();

// Writes `keys` to `file`, created with O_CREAT | O_EXCL and mode 0600 (never widened and narrowed afterwards); the
// parent directory is created with mode 0700 when missing. IoError when the file already exists or cannot be
// written. Format, one "name = value" per line after a version line:
//   # troupe curve keys v1
//   server_public = <z85>   server_secret = <z85>   client_public = <z85>   client_secret = <z85>
void write_curve_keys(const std::filesystem::path& file, const CurveKeys& keys);

// Reads a file written by write_curve_keys. IoError naming the file when it is missing or unreadable, or when its
// mode lets the group or others read or write it (a key anyone can read authenticates anyone); DataError naming the
// file for a wrong version line or a missing or malformed key.
CurveKeys read_curve_keys(const std::filesystem::path& file);

// The keys in the file named by $TROUPE_CURVE_KEYS, or nullopt when the variable is unset or empty.
std::optional<CurveKeys> curve_keys_from_env();

}  // namespace troupe::distributed
