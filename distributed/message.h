// The wire format between the RLHF controller and its worker roles: a plain Message struct and the free functions
// encode/decode that turn it into frames and back (header frame + one raw frame per tensor, zero-copy). A Frame is
// Troupe's own byte range, not a ZeroMQ type: this codec knows nothing of sockets. The transport
// (distributed/transport.cpp, the only code that sees <zmq.hpp>) moves frames over ZeroMQ; the group relay
// (distributed/group_relay.h) moves them over a communicator.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace troupe::distributed {

enum class MessageType : uint16_t {
  kGenerate = 1,      // actor: prompts -> sequences, logprobs
  kLogprobs,          // actor / reference: sequences -> per-token logprobs
  kValues,            // critic: sequences -> per-token values
  kScore,             // reward: sequences -> scores
  kTrainPolicy,       // actor: one PPO update on a minibatch schedule
  kTrainValue,        // critic: one value-function update
  kSyncWeights,       // a role receives new weights (and their version)
  kSaveState,         // checkpoint a role's state
  kLoadState,         // restore a role's state
  kHeartbeat,         // liveness probe, answered by serve() itself
  kShutdown,          // ends serve() after the reply
  kWeightGroupId,     // actor: a fresh id for a weight-broadcast group (NCCL)
  kJoinWeightGroup,   // actor, rollout: join the weight-broadcast group of an id
  kBroadcastWeights,  // actor (sends), rollout (receives): one weight push over that group
  kReply = 100,       // the answer to any request
  kError = 101,       // the request failed; strings["error"] says why
};

// One frame of an encoded message: a byte range and whatever keeps it alive (a tensor's storage, a received network
// buffer, or the frame's own string). Moving or copying a Frame never copies the bytes.
class Frame {
 public:
  Frame() = default;
  explicit Frame(std::string bytes);  // owns these bytes
  Frame(const void* data, size_t size, std::shared_ptr<const void> owner)
      : data_(data), size_(size), owner_(std::move(owner)) {}
  const void* data() const { return data_; }
  size_t size() const { return size_; }
  const std::shared_ptr<const void>& owner() const { return owner_; }
  std::string to_string() const { return std::string(static_cast<const char*>(data_), size_); }

 private:
  const void* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

// Bumped on any change to the header layout or to the meaning of a field.
constexpr uint32_t kProtocolVersion = 1;
// First header field: "TRPM" read as a little-endian uint32.
constexpr uint32_t kMessageMagic = 0x4d505254;
// Highest tensor rank encode accepts and decode allows.
constexpr uint32_t kMaxTensorRank = 16;

struct Message {
  Message() = default;
  explicit Message(MessageType message_type) : type(message_type) {}

  MessageType type = MessageType::kReply;
  uint64_t request_id = 0;                     // assigned by Client::send; 0 = none
  int64_t step = 0;                            // controller step the request belongs to
  int64_t weight_version = 0;                  // policy weight version the payload was produced with
  std::map<std::string, double> scalars;       // small numeric fields (metrics, options)
  std::map<std::string, std::string> strings;  // e.g. error text, role name
  // Named tensors of any shape, each sent as its own frame: CPU tensors zero-copy, CUDA tensors through one copy
  // to pinned host memory; received tensors are on the CPU (move them with to_device). Contract: a tensor is not
  // modified in place once it is in a sent or received message (over inproc, both sides share the same memory).
  std::vector<std::pair<std::string, at::Tensor>> tensors;

  // The first tensor called `name`; ProtocolError naming it and listing the message's tensors otherwise.
  const at::Tensor& tensor(const std::string& name) const;
  // scalars[name]; ProtocolError when missing.
  double scalar(const std::string& name) const;
  // strings[name]; ProtocolError when missing.
  const std::string& string(const std::string& name) const;
};

// "generate", "logprobs", ..., "reply", "error"; "unknown(<n>)" for a value outside the enum.
std::string to_string(MessageType type);

// Caps decode enforces before trusting any length in a header, so a hostile or corrupt message is a clear
// ProtocolError and never a large allocation.
struct DecodeLimits {
  size_t max_tensors = 4096;                      // tensors (frames - 1) per message
  uint64_t max_tensor_bytes = uint64_t{8} << 30;  // bytes of one tensor (8 GiB)
  size_t max_header_bytes = size_t{1} << 20;      // bytes of frame 0 (1 MiB)
};

// Frame 0 is the header, written with cereal's PortableBinaryOutputArchive, little-endian:
//   u8 1 (cereal's endianness flag) | u32 magic | u32 version | u16 type | u64 request id | i64 step
//   | i64 weight version | u64 n, n x (str name, f64 value) | u64 n, n x (str key, str value)
//   | u64 n, n x (str name, u8 dtype code, u32 rank, rank x i64 dim, u64 byte size)
// where str = u64 length + bytes and dtype codes are 1 float32, 2 float64, 3 bfloat16, 4 float16, 5 int64,
// 6 int32, 7 uint8, 8 bool. Frames 1..n are the tensors' raw bytes, contiguous and little-endian. Cost: a
// non-contiguous tensor is copied once by .contiguous(); a contiguous one is not copied: its frame points into the
// tensor's storage and holds a reference to it until ZeroMQ is done with it; a CUDA tensor is copied once into
// pinned host memory. Throws ProtocolError for a tensor that cannot travel: undefined, on another device than the
// CPU or a GPU, not strided, unsupported dtype, rank above kMaxTensorRank, or a duplicate name.
std::vector<Frame> encode(const Message& message);

// Inverse of encode. Validates everything against the header and `limits` (magic, version, type, frame count,
// dtype, shape, byte sizes, bool values) and throws ProtocolError on any inconsistency; never crashes or
// allocates according to an unchecked length. Tensors alias the received frames zero-copy (each tensor holds its
// frame's owner through the from_blob deleter); a frame whose data is not aligned to its element size (small
// frames inside ZeroMQ's receive buffer can be) is copied instead.
Message decode(std::vector<Frame>&& frames, const DecodeLimits& limits = {});

// `message` with every tensor moved to `device` (received tensors land on the receiver's device; a no-op on the
// CPU).
Message to_device(Message message, const c10::Device& device);

// The request id of a header frame of this protocol version, without decoding the rest; nullopt when the
// prefix is not a version-1 header. Lets a server answer a malformed request with an error the client can match.
std::optional<uint64_t> peek_request_id(const Frame& header);

}  // namespace troupe::distributed
