// `troupe bench transport`: bandwidth of one float32 tensor through Troupe's Server/Client (encode, decode,
// zero-copy frames) against raw ZeroMQ DEALER/ROUTER moving the same bytes as one plain frame, over the same
// kind of endpoint, in the same run. Not a multi-process or multi-node benchmark: both echo servers run on a
// thread of this process (over tcp/ipc the bytes still go through the kernel's socket path).
//
// Method (the same for both): an echo server sends every message straight back; a client times a batch of round
// trips and reports bandwidth = bytes / (round-trip time / 2), the median over --repeats batches. Batches of the
// two peers alternate so drift on a shared machine hits both alike. The raw peer sends its frame zero-copy as
// well (zmq_msg_init_data over the same buffer), so the ratio measures Troupe's own overhead.
//
// --curve adds a second table: the same Troupe echo with and without ZeroMQ CURVE (per-run keys, every frame
// encrypted with xsalsa20-poly1305 in ZeroMQ's I/O threads), batches alternating, and the bandwidth ratio; --io-threads
// sets ZeroMQ's I/O thread count (ZMQ_IO_THREADS, default 1) for both.
//
// Known effect (glibc malloc, not the wire format): after small-message traffic, 1M-16M Troupe messages can run at
// about half the raw rate, because ZeroMQ's I/O thread then reallocates its 8 KiB receive buffer behind each
// (zero-copy) header frame and glibc trims and regrows that thread's heap around the large receive buffers, so every
// message page-faults. Sizes measured alone, or GLIBC_TUNABLES=glibc.malloc.top_pad=16777216, show ratios near 1.
#include "distributed/transport.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zmq.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <zmq.hpp>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/errors.h"
#include "distributed/checked_call.h"
#include "distributed/curve_keys.h"

namespace troupe::bench {

namespace {

using Clock = std::chrono::steady_clock;
using namespace troupe::distributed;

struct TransportArgs {
  std::vector<std::string> sizes = {"1K", "1M", "16M", "64M"};  // tensor bytes (K/M/G = 2^10/2^20/2^30)
  int repeats = 30;                                             // timed batches per size and peer (median)
  std::string endpoint = "tcp";                                 // tcp | ipc | inproc
  double min_ratio = 0;                                         // exit 1 when a Troupe/raw ratio is below this
  bool curve = false;                                           // also compare Troupe with and without CURVE
  int io_threads = 1;                                           // ZMQ_IO_THREADS of the process's context
};

// Round trips per timed batch: about 64 MiB each way, between 1 and 2000 round trips.
constexpr uint64_t kBatchBytes = uint64_t{64} << 20;
constexpr int kMaxBatch = 2000;
constexpr auto kDeadline = std::chrono::seconds(60);

// "1K" -> 1024, "16M" -> 16 MiB, "4096" -> 4096; a positive multiple of 4 (whole float32 elements).
uint64_t parse_size(const std::string& text) {
  size_t pos = 0;
  uint64_t n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    throw ConfigError("--sizes: '" + text + "' is not a size like 4096, 1K, 16M or 1G");
  }
  const std::string suffix = text.substr(pos);
  const int shift = suffix.empty() ? 0 : suffix == "K" ? 10 : suffix == "M" ? 20 : suffix == "G" ? 30 : -1;
  if (shift < 0) throw ConfigError("--sizes: unknown suffix in '" + text + "' (use K, M or G)");
  n <<= shift;
  if (n == 0 || n % 4 != 0) throw ConfigError("--sizes: '" + text + "' must be a positive multiple of 4 bytes");
  return n;
}

// Runs `body(stop)` on a thread; finish() (or the destructor) raises `stop` and joins, rethrowing its error.
class EchoThread {
 public:
  explicit EchoThread(std::function<void(const std::atomic<bool>&)> body)
      : done_(std::async(std::launch::async, [this, body] { body(stop_); })) {}
  ~EchoThread() {
    stop_ = true;
    if (done_.valid()) done_.wait();
  }
  void finish() {
    stop_ = true;
    done_.get();
  }

 private:
  std::atomic<bool> stop_{false};
  std::future<void> done_;
};

// The raw peer's echo: every [identity, frame] a ROUTER receives goes straight back (the same zmq messages).
void raw_echo(void* router, const std::atomic<bool>& stop) {
  zmq::message_t identity, body;
  while (!stop) {
    zmq_pollitem_t item{router, 0, ZMQ_POLLIN, 0};
    if (TROUPE_ZMQ(zmq_poll(&item, 1, 20)) == 0) continue;
    TROUPE_ZMQ(zmq_msg_recv(identity.handle(), router, 0));
    TROUPE_ZMQ(zmq_msg_recv(body.handle(), router, 0));  // the raw client sends exactly one frame
    TROUPE_ZMQ(zmq_msg_send(identity.handle(), router, ZMQ_SNDMORE));
    TROUPE_ZMQ(zmq_msg_send(body.handle(), router, 0));
  }
}

// One raw round trip: `bytes` from `data` as one zero-copy frame, and the echo back.
void raw_round_trip(void* dealer, void* data, size_t bytes) {
  zmq::message_t frame(data, bytes, nullptr, nullptr);  // constant data: no copy, no free
  TROUPE_ZMQ(zmq_msg_send(frame.handle(), dealer, 0));
  zmq_pollitem_t item{dealer, 0, ZMQ_POLLIN, 0};
  const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline).count();
  if (TROUPE_ZMQ(zmq_poll(&item, 1, ms)) == 0) throw TimeoutError("bench transport: raw echo did not answer");
  zmq::message_t reply;
  TROUPE_ZMQ(zmq_msg_recv(reply.handle(), dealer, 0));
  if (reply.size() != bytes) throw Error(fmt::format("bench transport: raw echo returned {} bytes", reply.size()));
}

// Two endpoints of the chosen kind (Troupe's, raw's); a scratch directory for ipc sockets.
struct Endpoints {
  std::string troupe, raw, curve;
  std::filesystem::path ipc_dir;
  ~Endpoints() {
    std::error_code ec;
    if (!ipc_dir.empty()) std::filesystem::remove_all(ipc_dir, ec);
  }
};

void choose_endpoints(const std::string& kind, Endpoints& e) {
  const std::string tag = std::to_string(::getpid());
  if (kind == "tcp") {
    e.troupe = e.raw = e.curve = "tcp://127.0.0.1:*";
  } else if (kind == "inproc") {
    e.troupe = "inproc://bench-transport-troupe-" + tag;
    e.raw = "inproc://bench-transport-raw-" + tag;
  } else if (kind == "ipc") {
    e.ipc_dir = std::filesystem::temp_directory_path() / ("troupe-bench-transport-" + tag);
    std::filesystem::create_directories(e.ipc_dir);
    e.curve = "ipc://" + (e.ipc_dir / "curve.sock").string();
    e.troupe = "ipc://" + (e.ipc_dir / "troupe.sock").string();
    e.raw = "ipc://" + (e.ipc_dir / "raw.sock").string();
  } else {
    throw ConfigError("--endpoint must be tcp, ipc or inproc, not '" + kind + "'");
  }
}

std::string bound_endpoint(void* socket) {
  char text[1024] = {};
  size_t size = sizeof(text);
  TROUPE_ZMQ(zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, text, &size));
  return text;
}

std::string human(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30) && bytes % (uint64_t{1} << 30) == 0) return fmt::format("{}G", bytes >> 30);
  if (bytes >= (uint64_t{1} << 20) && bytes % (uint64_t{1} << 20) == 0) return fmt::format("{}M", bytes >> 20);
  if (bytes >= (uint64_t{1} << 10) && bytes % (uint64_t{1} << 10) == 0) return fmt::format("{}K", bytes >> 10);
  return std::to_string(bytes);
}

// A Troupe echo peer: Server + serve() echoing the request's tensors (the reply aliases the received frames) on a
// thread, and a Client connected to it; CURVE with `keys`.
struct TroupePeer {
  TroupePeer(const std::string& endpoint, const std::optional<CurveKeys>& keys)
      : server(endpoint, {}, keys),
        echo([this](const std::atomic<bool>& stop) {
          ServeOptions options;
          options.poll_interval = std::chrono::milliseconds(20);
          options.should_stop = [&stop] { return stop.load(); };
          serve(
              server,
              [](const Message& m) {
                Message reply;
                reply.tensors = m.tensors;
                return reply;
              },
              options);
        }),
        client("echo server", server.endpoint(), {}, keys) {}
  // One round trip of `request`, checking the echo's size.
  void trip(const Message& request, uint64_t bytes) {
    const Message reply = client.call(request, kDeadline);
    if (reply.tensor("x").nbytes() != bytes) throw Error("bench transport: Troupe echo returned the wrong size");
  }
  Server server;
  EchoThread echo;
  Client client;
};

// Seconds per one-way transfer of the two peers' round trips: the median over `repeats` batches each, batches
// alternating (and which goes first alternating) so that drift on a shared machine hits both alike.
std::pair<double, double> time_pair(int repeats, int batch, const std::function<void()>& a,
                                    const std::function<void()>& b) {
  auto time_batch = [batch](const std::function<void()>& trip) {
    const auto start = Clock::now();
    for (int i = 0; i < batch; ++i) trip();
    return std::chrono::duration<double>(Clock::now() - start).count() / batch / 2;  // one way
  };
  time_batch(a);  // warm-up: connections, allocator, page faults
  time_batch(b);
  std::vector<double> a_s, b_s;
  for (int r = 0; r < repeats; ++r) {
    if (r % 2 == 0) a_s.push_back(time_batch(a));
    b_s.push_back(time_batch(b));
    if (r % 2 == 1) a_s.push_back(time_batch(a));
  }
  return {median(a_s), median(b_s)};
}

int batch_for(uint64_t bytes) { return static_cast<int>(std::clamp<uint64_t>(kBatchBytes / bytes, 1, kMaxBatch)); }

Message tensor_request(const at::Tensor& tensor) {
  Message request;
  request.type = MessageType::kGenerate;
  request.tensors = {{"x", tensor}};
  return request;
}

void print_row(uint64_t bytes, int batch, double a, double b, double ratio) {
  std::cout << fmt::format("{:>6}{:>7}{:>14.3f}{:>11.1f}{:>14.3f}{:>11.1f}{:>7.2f}x\n", human(bytes), batch,
                           static_cast<double>(bytes) / a / 1e9, a * 1e6, static_cast<double>(bytes) / b / 1e9, b * 1e6,
                           ratio);
}

// Troupe's Server/Client against raw ZeroMQ DEALER/ROUTER; 1 when a ratio is below a.min_ratio.
int troupe_vs_raw(const TransportArgs& a, const std::vector<uint64_t>& sizes, const Endpoints& ends) {
  TroupePeer troupe(ends.troupe, std::nullopt);
  // The raw peer: a ROUTER echoing one plain frame to a DEALER, with the same socket options.
  distributed::detail::Socket router(ZMQ_ROUTER), dealer(ZMQ_DEALER);
  TROUPE_ZMQ(zmq_bind(router.get(), ends.raw.c_str()));
  TROUPE_ZMQ(zmq_connect(dealer.get(), bound_endpoint(router.get()).c_str()));
  EchoThread raw_thread([&router](const std::atomic<bool>& stop) { raw_echo(router.get(), stop); });

  std::cout << fmt::format("{:>6}{:>7}{:>14}{:>11}{:>14}{:>11}{:>8}\n", "size", "batch", "troupe GB/s", "(us)",
                           "raw GB/s", "(us)", "ratio");
  int status = 0;
  for (const uint64_t bytes : sizes) {
    auto tensor = torch::ones({static_cast<int64_t>(bytes / 4)});
    const Message request = tensor_request(tensor);
    const int batch = batch_for(bytes);
    const auto [ours, raw] = time_pair(
        a.repeats, batch, [&] { troupe.trip(request, bytes); },
        [&] { raw_round_trip(dealer.get(), tensor.data_ptr(), bytes); });
    print_row(bytes, batch, ours, raw, raw / ours);
    if (a.min_ratio > 0 && raw / ours < a.min_ratio) status = 1;
  }
  std::cout << "ratio = Troupe bandwidth / raw ZeroMQ bandwidth (goal >= 0.80)\n";
  troupe.echo.finish();
  raw_thread.finish();
  return status;
}

// Troupe with and without CURVE (fresh keys for this run).
void plain_vs_curve(const TransportArgs& a, const std::vector<uint64_t>& sizes, const Endpoints& ends) {
  TroupePeer plain(ends.troupe, std::nullopt);
  TroupePeer curve(ends.curve, generate_curve_keys());
  std::cout << fmt::format("\nCURVE: the same Troupe echo without and with ZeroMQ CURVE ({} ZeroMQ I/O thread(s))\n",
                           a.io_threads);
  std::cout << fmt::format("{:>6}{:>7}{:>14}{:>11}{:>14}{:>11}{:>8}\n", "size", "batch", "plain GB/s", "(us)",
                           "curve GB/s", "(us)", "ratio");
  for (const uint64_t bytes : sizes) {
    auto tensor = torch::ones({static_cast<int64_t>(bytes / 4)});
    const Message request = tensor_request(tensor);
    const int batch = batch_for(bytes);
    const auto [p, c] = time_pair(
        a.repeats, batch, [&] { plain.trip(request, bytes); }, [&] { curve.trip(request, bytes); });
    print_row(bytes, batch, p, c, p / c);
  }
  std::cout << "ratio = CURVE bandwidth / plain bandwidth; CURVE's cost = 1 - ratio (goal <= 15% at 64M)\n";
  plain.echo.finish();
  curve.echo.finish();
}

int run_transport(const TransportArgs& a) {
  std::vector<uint64_t> sizes;
  for (const auto& s : a.sizes) sizes.push_back(parse_size(s));
  if (a.curve && a.endpoint == "inproc") throw ConfigError("--curve needs --endpoint tcp or ipc (inproc has no CURVE)");
  // Before the first socket: the context starts its I/O threads then.
  TROUPE_ZMQ(zmq_ctx_set(zmq_context_handle(), ZMQ_IO_THREADS, a.io_threads));
  Endpoints ends;
  choose_endpoints(a.endpoint, ends);
  std::cout << fmt::format(
      "transport: float32 tensor echo over {} (echo servers on a thread of this process); bandwidth = bytes / "
      "(round trip / 2), median of {} batches\n",
      a.endpoint, a.repeats);
  const int status = troupe_vs_raw(a, sizes, ends);
  if (a.curve) plain_vs_curve(a, sizes, ends);
  return status;
}

}  // namespace

void add_bench_transport_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<TransportArgs>();
  auto* cmd = bench.add_subcommand("transport", "Tensor bandwidth through Server/Client vs raw ZeroMQ");
  cmd->add_option("--sizes", args->sizes, "tensor sizes in bytes (K/M/G suffixes)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "timed batches per size and peer (median)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--endpoint", args->endpoint, "tcp | ipc | inproc")
      ->check(CLI::IsMember({"tcp", "ipc", "inproc"}))
      ->capture_default_str();
  cmd->add_option("--min-ratio", args->min_ratio, "exit 1 if a Troupe/raw bandwidth ratio is below this");
  cmd->add_flag("--curve", args->curve, "also compare Troupe's bandwidth with and without ZeroMQ CURVE");
  cmd->add_option("--io-threads", args->io_threads, "ZeroMQ I/O threads (ZMQ_IO_THREADS)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_transport(*args); });
}

}  // namespace troupe::bench
