// Implementation of distributed/message.h: the cereal header, zero-copy tensor frames and decode's validation.
// Every length read from a header is checked against the bytes left in it or against DecodeLimits before use.
#include "distributed/message.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cereal/archives/portable_binary.hpp>
#include <cstring>
#include <istream>
#include <set>
#include <streambuf>

#include "core/errors.h"

// Tensor frames are the host's raw bytes and the wire says little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the message wire format assumes a little-endian host");

namespace troupe::distributed {

namespace {

// Dtype codes on the wire: stable numbers of our own, not c10::ScalarType's (which may change between releases).
struct DtypeEntry {
  uint8_t code;
  at::ScalarType type;
  const char* name;
};
constexpr DtypeEntry kDtypes[] = {
    {1, at::kFloat, "float32"}, {2, at::kDouble, "float64"}, {3, at::kBFloat16, "bfloat16"}, {4, at::kHalf, "float16"},
    {5, at::kLong, "int64"},    {6, at::kInt, "int32"},      {7, at::kByte, "uint8"},        {8, at::kBool, "bool"},
};

const DtypeEntry* dtype_by_type(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return &d;
  return nullptr;
}

const DtypeEntry* dtype_by_code(uint8_t code) {
  for (const auto& d : kDtypes)
    if (d.code == code) return &d;
  return nullptr;
}

bool known_type(uint16_t t) {
  return (t >= 1 && t <= static_cast<uint16_t>(MessageType::kBroadcastWeights)) || t == 100 || t == 101;
}

// One tensor as the header describes it.
struct TensorDesc {
  std::string name;
  const DtypeEntry* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Encoding

using Writer = cereal::PortableBinaryOutputArchive;

// An append-only std::streambuf into a std::string, with its std::ostream: one per thread, reused by encode so a
// message costs neither a stream construction (locale set-up) nor a second copy of the header.
struct HeaderSink : std::streambuf {
  std::string bytes;
  std::ostream stream{this};

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    bytes.append(s, static_cast<size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) bytes.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }
};

void write_string(Writer& ar, const std::string& s) {
  ar(static_cast<uint64_t>(s.size()));
  ar(cereal::binary_data(s.data(), s.size()));
}

// Checks that `t` can travel and returns it contiguous in host memory (a copy only when it was not: GPU tensors
// are copied once into pinned host memory, the fastest device-to-host path).
at::Tensor sendable(const std::string& name, const at::Tensor& t) {
  if (!t.defined()) throw ProtocolError(fmt::format("cannot send tensor '{}': undefined tensor", name));
  if (t.is_cuda() && t.layout() == at::kStrided)
    return sendable(name, at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true)).copy_(t));
  if (!t.device().is_cpu())
    throw ProtocolError(
        fmt::format("cannot send tensor '{}': on {}, only CPU and CUDA tensors travel", name, t.device().str()));
  if (t.layout() != at::kStrided)
    throw ProtocolError(fmt::format("cannot send tensor '{}': not a strided tensor", name));
  if (dtype_by_type(t.scalar_type()) == nullptr)
    throw ProtocolError(
        fmt::format("cannot send tensor '{}': unsupported dtype {}", name, c10::toString(t.scalar_type())));
  if (t.dim() > static_cast<int64_t>(kMaxTensorRank))
    throw ProtocolError(fmt::format("cannot send tensor '{}': rank {} exceeds {}", name, t.dim(), kMaxTensorRank));
  return t.is_contiguous() ? t : t.contiguous();
}

// A frame pointing into the tensor's storage; the heap copy of the handle keeps the storage alive until ZeroMQ
// calls the free function (possibly from its I/O thread: tensor refcounts are atomic).
Frame tensor_frame(const at::Tensor& t) {
  if (t.nbytes() == 0) return Frame();
  auto hold = std::make_shared<const at::Tensor>(t);
  return Frame(hold->data_ptr(), hold->nbytes(), hold);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

// A read-only std::streambuf over a frame's bytes (no copy) that can say how many bytes are left.
class MemoryBuffer : public std::streambuf {
 public:
  void reset(const char* data, size_t size) {
    char* p = const_cast<char*>(data);  // only ever read
    setg(p, p, p + size);
  }
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

// One std::istream per thread, re-pointed at each header: constructing a stream (locale set-up) costs more than
// parsing a small header.
struct HeaderSource {
  MemoryBuffer buffer;
  std::istream stream{&buffer};
};

// Reads header fields; a length that exceeds the bytes left is a ProtocolError before anything is allocated.
// Reading past the end makes cereal throw, which decode turns into a ProtocolError.
class HeaderReader {
 public:
  HeaderReader(HeaderSource& source, const Frame& frame)
      : buffer_((source.buffer.reset(static_cast<const char*>(frame.data()), frame.size()), source.buffer)),
        archive_(source.stream) {}

  template <class T>
  T read() {
    T value{};
    archive_(value);
    return value;
  }
  // A count or length that must fit in what is left of the header (every item takes at least one byte).
  uint64_t read_length(const char* what) {
    const auto n = read<uint64_t>();
    if (n > buffer_.remaining())
      throw ProtocolError(fmt::format("bad message: {} {} exceeds the {} header bytes left", what, n, remaining()));
    return n;
  }
  std::string read_string(const char* what) {
    std::string s(read_length(what), '\0');
    archive_(cereal::binary_data(s.data(), s.size()));
    return s;
  }
  size_t remaining() const { return buffer_.remaining(); }

 private:
  MemoryBuffer& buffer_;
  cereal::PortableBinaryInputArchive archive_;
};

// Bytes of a tensor of `shape` with elements of `element_size` bytes, or nullopt when it exceeds `cap`
// (checked per factor, so a hostile shape cannot overflow the product). A zero dimension makes the tensor empty, but
// the other dimensions must still fit the cap: torch lays out an empty tensor's strides from them, and [0, 2^62, 2^62]
// overflows int64 there (c10::Error "Stride calculation overflowed", found by fuzz/fuzz_message).
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, uint64_t element_size, uint64_t cap) {
  uint64_t bytes = element_size;
  bool empty = false;
  for (const int64_t d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    const auto u = static_cast<uint64_t>(d);
    if (bytes > cap / u) return std::nullopt;
    bytes *= u;
  }
  if (bytes > cap) return std::nullopt;
  return empty ? 0 : bytes;
}

std::string shape_string(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

TensorDesc read_tensor_desc(HeaderReader& r, const DecodeLimits& limits) {
  TensorDesc d;
  d.name = r.read_string("tensor name length");
  const auto code = r.read<uint8_t>();
  d.dtype = dtype_by_code(code);
  if (d.dtype == nullptr)
    throw ProtocolError(fmt::format("bad message: tensor '{}' has unknown dtype code {}", d.name, code));
  const auto rank = r.read<uint32_t>();
  if (rank > kMaxTensorRank)
    throw ProtocolError(fmt::format("bad message: tensor '{}' has rank {}, at most {}", d.name, rank, kMaxTensorRank));
  for (uint32_t i = 0; i < rank; ++i) {
    const auto dim = r.read<int64_t>();
    if (dim < 0) throw ProtocolError(fmt::format("bad message: tensor '{}' has negative dimension {}", d.name, dim));
    d.shape.push_back(dim);
  }
  d.nbytes = r.read<uint64_t>();
  if (d.nbytes > limits.max_tensor_bytes)
    throw ProtocolError(
        fmt::format("bad message: tensor '{}' declares {} bytes, limit {}", d.name, d.nbytes, limits.max_tensor_bytes));
  const auto expected = checked_nbytes(d.shape, c10::elementSize(d.dtype->type), limits.max_tensor_bytes);
  if (!expected)
    throw ProtocolError(fmt::format("bad message: tensor '{}' of shape {} {} exceeds the limit of {} bytes", d.name,
                                    shape_string(d.shape), d.dtype->name, limits.max_tensor_bytes));
  if (*expected != d.nbytes)
    throw ProtocolError(fmt::format("bad message: tensor '{}' of shape {} {} is {} bytes, header declares {}", d.name,
                                    shape_string(d.shape), d.dtype->name, *expected, d.nbytes));
  return d;
}

// Parses and validates frame 0; fills `m`'s fields and returns the tensor descriptions.
std::vector<TensorDesc> read_header(const Frame& frame, size_t tensor_frames, const DecodeLimits& limits, Message& m) {
  if (frame.size() > limits.max_header_bytes)
    throw ProtocolError(
        fmt::format("bad message: header is {} bytes, limit {}", frame.size(), limits.max_header_bytes));
  if (frame.size() == 0 || *static_cast<const uint8_t*>(frame.data()) != 1)
    throw ProtocolError("bad message: header does not start with cereal's little-endian flag (not a Troupe message)");
  thread_local HeaderSource source;
  HeaderReader r(source, frame);
  const auto magic = r.read<uint32_t>();
  if (magic != kMessageMagic)
    throw ProtocolError(
        fmt::format("bad message: magic {:#010x}, expected {:#010x} (not a Troupe message)", magic, kMessageMagic));
  const auto version = r.read<uint32_t>();
  if (version != kProtocolVersion)
    throw ProtocolError(fmt::format("bad message: protocol version {}, expected {}", version, kProtocolVersion));
  const auto type = r.read<uint16_t>();
  if (!known_type(type)) throw ProtocolError(fmt::format("bad message: unknown message type {}", type));
  m.type = static_cast<MessageType>(type);
  m.request_id = r.read<uint64_t>();
  m.step = r.read<int64_t>();
  m.weight_version = r.read<int64_t>();
  for (uint64_t i = 0, n = r.read_length("scalar count"); i < n; ++i) {
    auto key = r.read_string("scalar name length");
    const auto value = r.read<double>();
    if (!m.scalars.emplace(std::move(key), value).second) throw ProtocolError("bad message: duplicate scalar name");
  }
  for (uint64_t i = 0, n = r.read_length("string count"); i < n; ++i) {
    auto key = r.read_string("string name length");
    auto value = r.read_string("string length");
    if (!m.strings.emplace(std::move(key), std::move(value)).second)
      throw ProtocolError("bad message: duplicate string name");
  }
  const auto n_tensors = r.read<uint64_t>();
  if (n_tensors > limits.max_tensors)
    throw ProtocolError(fmt::format("bad message: {} tensors, limit {}", n_tensors, limits.max_tensors));
  if (n_tensors != tensor_frames)
    throw ProtocolError(
        fmt::format("bad message: header declares {} tensors but {} tensor frames arrived", n_tensors, tensor_frames));
  std::vector<TensorDesc> descs;
  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    descs.push_back(read_tensor_desc(r, limits));
    if (!names.insert(descs.back().name).second)
      throw ProtocolError(fmt::format("bad message: duplicate tensor name '{}'", descs.back().name));
  }
  if (r.remaining() != 0)
    throw ProtocolError(fmt::format("bad message: {} unexpected bytes after the header", r.remaining()));
  return descs;
}

// A tensor over the frame's bytes; the from_blob deleter owns the frame. Copies when the frame's data is
// not aligned to the element size (compilers may vectorise assuming it is).
at::Tensor tensor_from_frame(Frame&& frame, const TensorDesc& d) {
  const auto options = at::TensorOptions().dtype(d.dtype->type);
  if (d.nbytes == 0) return at::empty(d.shape, options);
  if (reinterpret_cast<uintptr_t>(frame.data()) % c10::elementSize(d.dtype->type) != 0) {
    auto copy = at::empty(d.shape, options);
    std::memcpy(copy.data_ptr(), frame.data(), d.nbytes);
    return copy;
  }
  auto* owned = new Frame(std::move(frame));
  return at::for_blob(const_cast<void*>(owned->data()), d.shape)
      .context(owned, [](void* p) { delete static_cast<Frame*>(p); })  // freed even if make_tensor throws
      .options(options)
      .make_tensor();
}

}  // namespace

const at::Tensor& Message::tensor(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back("'" + entry.first + "'");
  throw ProtocolError(fmt::format("{} message has no tensor '{}' (it has: {})", to_string(type), name,
                                  names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
}

double Message::scalar(const std::string& name) const {
  auto it = scalars.find(name);
  if (it == scalars.end()) throw ProtocolError(fmt::format("{} message has no scalar '{}'", to_string(type), name));
  return it->second;
}

const std::string& Message::string(const std::string& name) const {
  auto it = strings.find(name);
  if (it == strings.end()) throw ProtocolError(fmt::format("{} message has no string '{}'", to_string(type), name));
  return it->second;
}

std::string to_string(MessageType type) {
  switch (type) {
    case MessageType::kGenerate: return "generate";
    case MessageType::kLogprobs: return "logprobs";
    case MessageType::kValues: return "values";
    case MessageType::kScore: return "score";
    case MessageType::kTrainPolicy: return "train_policy";
    case MessageType::kTrainValue: return "train_value";
    case MessageType::kSyncWeights: return "sync_weights";
    case MessageType::kSaveState: return "save_state";
    case MessageType::kLoadState: return "load_state";
    case MessageType::kHeartbeat: return "heartbeat";
    case MessageType::kShutdown: return "shutdown";
    case MessageType::kWeightGroupId: return "weight_group_id";
    case MessageType::kJoinWeightGroup: return "join_weight_group";
    case MessageType::kBroadcastWeights: return "broadcast_weights";
    case MessageType::kReply: return "reply";
    case MessageType::kError: return "error";
  }
  return "unknown(" + std::to_string(static_cast<uint16_t>(type)) + ")";
}

Frame::Frame(std::string bytes) {
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  data_ = owned->data();
  size_ = owned->size();
  owner_ = std::move(owned);
}

std::vector<Frame> encode(const Message& m) {
  std::vector<at::Tensor> payload;
  payload.reserve(m.tensors.size());
  std::set<std::string> names;
  for (const auto& [name, t] : m.tensors) {
    if (!names.insert(name).second) throw ProtocolError(fmt::format("cannot send tensor '{}': duplicate name", name));
    payload.push_back(sendable(name, t));
  }
  thread_local HeaderSink header;
  header.bytes.clear();
  {
    Writer ar(header.stream, Writer::Options::LittleEndian());
    ar(kMessageMagic, kProtocolVersion, static_cast<uint16_t>(m.type), m.request_id, m.step, m.weight_version);
    ar(static_cast<uint64_t>(m.scalars.size()));
    for (const auto& [key, value] : m.scalars) {
      write_string(ar, key);
      ar(value);
    }
    ar(static_cast<uint64_t>(m.strings.size()));
    for (const auto& [key, value] : m.strings) {
      write_string(ar, key);
      write_string(ar, value);
    }
    ar(static_cast<uint64_t>(payload.size()));
    for (size_t i = 0; i < payload.size(); ++i) {
      const auto& t = payload[i];
      write_string(ar, m.tensors[i].first);
      ar(dtype_by_type(t.scalar_type())->code, static_cast<uint32_t>(t.dim()));
      for (const int64_t d : t.sizes()) ar(d);
      ar(static_cast<uint64_t>(t.nbytes()));
    }
  }
  std::vector<Frame> frames;
  frames.reserve(payload.size() + 1);
  frames.emplace_back(std::string(header.bytes.data(), header.bytes.size()));
  for (const auto& t : payload) frames.push_back(tensor_frame(t));
  return frames;
}

Message decode(std::vector<Frame>&& frames, const DecodeLimits& limits) {
  if (frames.empty()) throw ProtocolError("bad message: no frames");
  Message m;
  std::vector<TensorDesc> descs;
  try {
    descs = read_header(frames[0], frames.size() - 1, limits, m);
  } catch (const cereal::Exception& e) {
    throw ProtocolError(
        fmt::format("bad message: truncated or malformed header ({} bytes): {}", frames[0].size(), e.what()));
  }
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& frame = frames[i + 1];
    if (frame.size() != descs[i].nbytes)
      throw ProtocolError(fmt::format("bad message: tensor '{}' frame has {} bytes, header declares {}", descs[i].name,
                                      frame.size(), descs[i].nbytes));
    if (descs[i].dtype->type == at::kBool) {
      const auto* p = static_cast<const uint8_t*>(frame.data());
      for (size_t j = 0; j < frame.size(); ++j)
        if (p[j] > 1)
          throw ProtocolError(fmt::format("bad message: bool tensor '{}' holds byte {}", descs[i].name, p[j]));
    }
  }
  m.tensors.reserve(descs.size());
  for (size_t i = 0; i < descs.size(); ++i)
    m.tensors.emplace_back(descs[i].name, tensor_from_frame(std::move(frames[i + 1]), descs[i]));
  return m;
}

std::optional<uint64_t> peek_request_id(const Frame& header) {
  // Layout of a version-1 prefix: flag (1) | magic (4) | version (4) | type (2) | request id (8).
  if (header.size() < 19) return std::nullopt;
  const auto* p = static_cast<const char*>(header.data());
  uint32_t magic = 0, version = 0;
  uint64_t id = 0;
  std::memcpy(&magic, p + 1, 4);
  std::memcpy(&version, p + 5, 4);
  std::memcpy(&id, p + 11, 8);
  if (p[0] != 1 || magic != kMessageMagic || version != kProtocolVersion) return std::nullopt;
  return id;
}

Message to_device(Message message, const c10::Device& device) {
  for (auto& [name, t] : message.tensors)
    if (t.device() != device) t = t.to(device, /*non_blocking=*/false);
  return message;
}

}  // namespace troupe::distributed
