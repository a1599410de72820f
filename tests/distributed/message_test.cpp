// encode/decode: round trips of every dtype and header field, zero-copy in both directions, and decode's
// rejection of every inconsistency (version, magic, type, frame counts and sizes, hostile lengths, garbage).
#include "distributed/message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cereal/archives/portable_binary.hpp>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "core/errors.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;

// Frames <-> byte strings, so one encoded message can be mutated and decoded many times.
std::vector<std::string> to_parts(const std::vector<Frame>& frames) {
  std::vector<std::string> parts;
  for (const auto& f : frames) parts.push_back(f.to_string());
  return parts;
}

std::vector<Frame> to_frames(const std::vector<std::string>& parts) {
  std::vector<Frame> frames;
  for (const auto& p : parts) frames.emplace_back(p);
  return frames;
}

// Expects decode to throw ProtocolError whose text contains `needle`.
void expect_rejected(const std::vector<std::string>& parts, const std::string& needle,
                     const DecodeLimits& limits = {}) {
  try {
    decode(to_frames(parts), limits);
    ADD_FAILURE() << "decode accepted a message that should fail with: " << needle;
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

// The header layout written out by hand (pins the wire format): lets tests declare what encode never would.
struct RawTensor {
  std::string name = "t";
  uint8_t dtype = 1;  // float32
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

struct RawHeader {
  uint32_t magic = kMessageMagic;
  uint32_t version = kProtocolVersion;
  uint16_t type = 100;
  uint64_t request_id = 7;
  int64_t step = 3, weight_version = 2;
  std::vector<std::pair<std::string, double>> scalars;
  std::optional<uint64_t> scalar_count;   // overrides scalars.size()
  std::optional<uint64_t> string_length;  // writes one string entry whose key claims this length
  std::vector<RawTensor> tensors;
  std::optional<uint64_t> tensor_count;   // overrides tensors.size()
  std::optional<uint32_t> rank_override;  // written instead of the first tensor's rank

  std::string bytes() const {
    std::ostringstream out(std::ios::binary);
    {
      cereal::PortableBinaryOutputArchive ar(out, cereal::PortableBinaryOutputArchive::Options::LittleEndian());
      auto str = [&](const std::string& s) {
        ar(static_cast<uint64_t>(s.size()));
        ar(cereal::binary_data(s.data(), s.size()));
      };
      ar(magic, version, type, request_id, step, weight_version);
      ar(scalar_count.value_or(scalars.size()));
      for (const auto& [k, v] : scalars) {
        str(k);
        ar(v);
      }
      if (string_length) {
        ar(uint64_t{1}, *string_length);
        ar(cereal::binary_data("abc", 3));
      } else {
        ar(uint64_t{0});
      }
      ar(tensor_count.value_or(tensors.size()));
      for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        str(t.name);
        ar(t.dtype, i == 0 && rank_override ? *rank_override : static_cast<uint32_t>(t.shape.size()));
        for (auto d : t.shape) ar(d);
        ar(t.nbytes);
      }
    }
    return out.str();
  }
};

Message sample_message() {
  Message m;
  m.type = MessageType::kValues;
  m.request_id = 11;
  m.step = 5;
  m.weight_version = 9;
  m.scalars["temperature"] = 0.7;
  m.strings["role"] = "critic";
  m.tensors.emplace_back("ids", torch::arange(6, torch::kLong).reshape({2, 3}));
  m.tensors.emplace_back("mask", torch::tensor({true, false}));
  return m;
}

TEST(Message, RoundTripsEveryDtypeIncludingEmptyAndZeroDim) {
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf, torch::kLong, torch::kInt,
                     torch::kByte, torch::kBool}) {
    SCOPED_TRACE(c10::toString(dtype));
    Message m;
    auto values = torch::arange(12).reshape({3, 4});
    m.tensors.emplace_back("matrix", (dtype == torch::kBool ? values.remainder(2) : values).to(dtype));
    m.tensors.emplace_back("empty", torch::empty({0, 5}, dtype));
    m.tensors.emplace_back("scalar", torch::ones({}, dtype));
    const Message out = decode(encode(m));
    ASSERT_EQ(out.tensors.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(out.tensors[i].first, m.tensors[i].first);
      EXPECT_EQ(out.tensors[i].second.scalar_type(), dtype);
      EXPECT_EQ(out.tensors[i].second.sizes(), m.tensors[i].second.sizes());
      EXPECT_TRUE(torch::equal(out.tensors[i].second, m.tensors[i].second));
    }
    EXPECT_EQ(out.tensor("scalar").dim(), 0);
  }
}

TEST(Message, RoundTripsHeaderFields) {
  Message m;
  m.type = MessageType::kTrainPolicy;
  m.request_id = (uint64_t{1} << 63) + 5;
  m.step = -3;
  m.weight_version = 42;
  m.scalars = {{"lr", 1e-5}, {"inf", std::numeric_limits<double>::infinity()}, {"", -0.5}};
  m.strings = {{"role", "actor"}, {"bytes", std::string("\0\xff\n", 3)}, {"empty", ""}};
  const Message out = decode(encode(m));
  EXPECT_EQ(out.type, MessageType::kTrainPolicy);
  EXPECT_EQ(out.request_id, m.request_id);
  EXPECT_EQ(out.step, -3);
  EXPECT_EQ(out.weight_version, 42);
  EXPECT_EQ(out.scalars, m.scalars);
  EXPECT_EQ(out.strings, m.strings);
  EXPECT_TRUE(out.tensors.empty());
  EXPECT_EQ(out.scalar("lr"), 1e-5);
}

TEST(Message, NonContiguousInputArrivesContiguous) {
  auto base = torch::arange(24, torch::kFloat).reshape({4, 6});
  Message m;
  m.tensors.emplace_back("transposed", base.t());          // (6, 4), strides (1, 6)
  m.tensors.emplace_back("offset", base.narrow(0, 1, 2));  // storage offset 6
  m.tensors.emplace_back("strided", base.index({torch::indexing::Slice(), torch::indexing::Slice(0, 6, 2)}));
  const Message out = decode(encode(m));
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    EXPECT_TRUE(out.tensors[i].second.is_contiguous());
    EXPECT_TRUE(torch::equal(out.tensors[i].second, m.tensors[i].second)) << m.tensors[i].first;
  }
}

TEST(Message, TensorFramesAreZeroCopyBothWays) {
  auto t = torch::arange(1000, torch::kFloat);
  void* original = t.data_ptr();
  Message m;
  m.tensors.emplace_back("x", t);
  auto frames = encode(m);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].data(), original);  // the frame points into the tensor's storage
  Message out = decode(std::move(frames));
  EXPECT_EQ(out.tensor("x").data_ptr(), original);  // and the decoded tensor into the frame
  // The storage outlives the sender's handle and the frames: the decoded tensor holds it.
  m.tensors.clear();
  t.reset();
  EXPECT_TRUE(torch::equal(out.tensor("x"), torch::arange(1000, torch::kFloat)));
}

TEST(Message, MisalignedFrameIsCopiedNotAliased) {
  Message m;
  m.tensors.emplace_back("x", torch::tensor({1.5, -2.0, 3.25}, torch::kDouble));
  auto parts = to_parts(encode(m));
  std::vector<char> buffer(parts[1].size() + 1);
  std::memcpy(buffer.data() + 1, parts[1].data(), parts[1].size());
  std::vector<Frame> frames;
  frames.emplace_back(parts[0]);
  frames.emplace_back(buffer.data() + 1, parts[1].size(), nullptr);  // not owned, odd address
  const Message out = decode(std::move(frames));
  EXPECT_NE(out.tensor("x").data_ptr(), static_cast<void*>(buffer.data() + 1));
  EXPECT_TRUE(torch::equal(out.tensor("x"), m.tensor("x")));
}

TEST(Message, HandWrittenHeaderMatchesTheEncoder) {
  RawHeader h;
  h.scalars = {{"a", 1.0}};
  h.tensors = {RawTensor{"t", 1, {2, 3}, 24}};
  const Message out = decode(to_frames({h.bytes(), std::string(24, '\0')}));
  EXPECT_EQ(out.request_id, 7u);
  EXPECT_EQ(out.scalar("a"), 1.0);
  EXPECT_EQ(out.tensor("t").sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.bytes().substr(0, 19), to_parts(encode(out))[0].substr(0, 19));
}

TEST(Message, RejectsUnknownProtocolVersion) {
  auto parts = to_parts(encode(sample_message()));
  const uint32_t v2 = 2;
  std::memcpy(parts[0].data() + 5, &v2, 4);  // flag (1) | magic (4) | version (4)
  expect_rejected(parts, "protocol version 2, expected 1");
}

TEST(Message, RejectsWrongMagicAndEndianFlag) {
  auto parts = to_parts(encode(sample_message()));
  auto bad_magic = parts;
  bad_magic[0][2] ^= 0x5a;
  expect_rejected(bad_magic, "magic");
  auto bad_flag = parts;
  bad_flag[0][0] = 0;
  expect_rejected(bad_flag, "not a Troupe message");
}

TEST(Message, RejectsUnknownType) {
  for (uint16_t type : {0, 15, 99, 102, 7777}) {  // 1..14 are requests, 100 and 101 replies
    RawHeader h;
    h.type = type;
    expect_rejected({h.bytes()}, "unknown message type " + std::to_string(type));
  }
}

TEST(Message, RejectsEveryTruncationOfTheHeader) {
  const auto parts = to_parts(encode(sample_message()));
  for (size_t n = 0; n < parts[0].size(); ++n) {
    auto cut = parts;
    cut[0].resize(n);
    EXPECT_THROW(decode(to_frames(cut)), ProtocolError) << "header cut to " << n << " bytes";
  }
  expect_rejected({parts[0].substr(0, 30), parts[1], parts[2]}, "truncated or malformed header");
}

TEST(Message, RejectsTrailingHeaderBytes) {
  auto parts = to_parts(encode(sample_message()));
  parts[0] += "x";
  expect_rejected(parts, "1 unexpected bytes after the header");
}

TEST(Message, RejectsFrameCountMismatch) {
  const auto parts = to_parts(encode(sample_message()));
  expect_rejected({parts[0], parts[1]}, "header declares 2 tensors but 1 tensor frames arrived");
  expect_rejected({parts[0], parts[1], parts[2], "extra"}, "header declares 2 tensors but 3 tensor frames arrived");
  expect_rejected({}, "no frames");
}

TEST(Message, RejectsFrameSizeDifferentFromDeclared) {
  auto parts = to_parts(encode(sample_message()));
  parts[1].pop_back();
  expect_rejected(parts, "tensor 'ids' frame has 47 bytes, header declares 48");
}

TEST(Message, RejectsDeclaredSizeInconsistentWithShape) {
  RawHeader h;
  h.tensors = {RawTensor{"x", 1, {2, 3}, 20}};
  expect_rejected({h.bytes(), std::string(20, '\0')},
                  "tensor 'x' of shape [2, 3] float32 is 24 bytes, header declares 20");
}

TEST(Message, RejectsOversizedTensorsWithoutAllocating) {
  RawHeader h;  // 4 TiB declared, with a consistent shape: refused before any frame is looked at
  h.tensors = {RawTensor{"huge", 1, {int64_t{1} << 40}, uint64_t{4} << 40}};
  expect_rejected({h.bytes(), ""}, "declares 4398046511104 bytes, limit 8589934592");
  h.tensors = {RawTensor{"overflow", 1, {int64_t{1} << 62, int64_t{1} << 62}, 0}};  // product overflows uint64
  expect_rejected({h.bytes(), ""}, "exceeds the limit");
  // Empty, yet its other dimensions overflow torch's strides (found by fuzz/fuzz_message: c10::Error escaped decode).
  h.tensors = {RawTensor{"z", 1, {0, int64_t{1} << 62, int64_t{1} << 62}, 0}};
  expect_rejected({h.bytes(), ""}, "tensor 'z' of shape [0, 4611686018427387904, 4611686018427387904] float32 exceeds");
  DecodeLimits small;
  small.max_tensor_bytes = 100;
  Message m;
  m.tensors.emplace_back("x", torch::zeros({26}));  // 104 bytes
  expect_rejected(to_parts(encode(m)), "declares 104 bytes, limit 100", small);
}

TEST(Message, RejectsHugeLengthFieldsWithoutAllocating) {
  RawHeader h;
  h.string_length = uint64_t{1} << 62;
  expect_rejected({h.bytes()}, "string name length 4611686018427387904 exceeds");
  RawHeader counts;
  counts.scalar_count = uint64_t{1} << 60;
  expect_rejected({counts.bytes()}, "scalar count");
  RawHeader tensors;
  tensors.tensor_count = 5000;
  expect_rejected({tensors.bytes()}, "5000 tensors, limit 4096");
}

TEST(Message, RejectsOversizedHeader) {
  expect_rejected({std::string((1 << 20) + 1, '\1')}, "header is 1048577 bytes, limit 1048576");
  DecodeLimits small;
  small.max_header_bytes = 16;
  expect_rejected(to_parts(encode(sample_message())), "limit 16", small);
}

TEST(Message, RejectsBadDtypeRankAndShape) {
  RawHeader h;
  h.tensors = {RawTensor{"x", 99, {1}, 4}};
  expect_rejected({h.bytes(), "abcd"}, "tensor 'x' has unknown dtype code 99");
  h.tensors = {RawTensor{"x", 1, {-1}, 0}};
  expect_rejected({h.bytes(), ""}, "tensor 'x' has negative dimension -1");
  h.tensors = {RawTensor{"x", 1, {}, 4}};
  h.rank_override = 17;
  expect_rejected({h.bytes(), "abcd"}, "rank 17, at most 16");
  h.rank_override = 0xffffffff;
  expect_rejected({h.bytes(), "abcd"}, "rank 4294967295");
}

TEST(Message, RejectsDuplicateNamesAndBadBools) {
  RawHeader h;
  h.tensors = {RawTensor{"x", 1, {1}, 4}, RawTensor{"x", 1, {1}, 4}};
  expect_rejected({h.bytes(), "abcd", "abcd"}, "duplicate tensor name 'x'");
  RawHeader b;
  b.tensors = {RawTensor{"mask", 8, {3}, 3}};
  expect_rejected({b.bytes(), std::string("\0\1\2", 3)}, "bool tensor 'mask' holds byte 2");
}

TEST(Message, EncodeRejectsTensorsThatCannotTravel) {
  auto rejects = [](const std::string& name, const at::Tensor& t, const std::string& needle) {
    Message m;
    m.tensors.emplace_back(name, t);
    try {
      encode(m);
      ADD_FAILURE() << "encode accepted " << name;
    } catch (const ProtocolError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
    }
  };
  rejects("undef", at::Tensor(), "cannot send tensor 'undef': undefined");
  rejects("c", torch::zeros({2}, torch::kComplexFloat), "unsupported dtype ComplexFloat");
  rejects("s", torch::zeros({2}, torch::kShort), "unsupported dtype Short");
  rejects("deep", torch::zeros(std::vector<int64_t>(17, 1)), "rank 17 exceeds 16");
  rejects("sparse", torch::zeros({2, 2}).to_sparse(), "not a strided tensor");
  Message dup;
  dup.tensors = {{"a", torch::zeros({1})}, {"a", torch::zeros({1})}};
  EXPECT_THROW(encode(dup), ProtocolError);
}

// Random frames and random mutations of a valid message: decode either succeeds or throws ProtocolError.
TEST(Message, GarbageNeverCrashes) {
  std::mt19937_64 rng(12345);
  auto byte = [&] { return static_cast<char>(rng() & 0xff); };
  const auto valid = to_parts(encode(sample_message()));
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> parts;
    if (i % 2 == 0) {  // pure garbage, sometimes with a valid prefix so the parser gets further
      const size_t frames = 1 + rng() % 4;
      for (size_t f = 0; f < frames; ++f) {
        std::string p(rng() % 96, '\0');
        for (auto& c : p) c = byte();
        parts.push_back(p);
      }
      if (i % 4 == 0) parts[0] = valid[0].substr(0, 19) + parts[0];
    } else {  // a valid message with a few bytes changed, a frame cut, or a frame dropped
      parts = valid;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        auto& p = parts[rng() % parts.size()];
        if (!p.empty()) p[rng() % p.size()] = byte();
      }
      if (rng() % 8 == 0) parts[rng() % parts.size()].resize(rng() % 40);
      if (rng() % 8 == 0) parts.pop_back();
    }
    try {
      const Message m = decode(to_frames(parts));
      for (const auto& [name, t] : m.tensors) (void)t.sum().item<double>();  // touch every accepted tensor
      ++accepted;
    } catch (const ProtocolError&) {
    } catch (const std::exception& e) {
      FAIL() << "iteration " << i << ": decode threw something other than ProtocolError: " << e.what();
    }
  }
  EXPECT_GT(accepted, 0);  // some mutations only touch tensor bytes or scalar values
}

TEST(Message, AccessorsNameWhatIsMissing) {
  const Message m = sample_message();
  EXPECT_EQ(m.tensor("ids").size(1), 3);
  try {
    m.tensor("values");
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr("values message has no tensor 'values' (it has: 'ids', 'mask')"));
  }
  try {
    m.scalar("kl");
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no scalar 'kl'"));
  }
  Message named = m;
  named.strings["name"] = "x";
  EXPECT_EQ(named.string("name"), "x");
  try {
    named.string("checksum");
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr("values message has no string 'checksum'"));
  }
}

TEST(Message, ToStringNamesEveryType) {
  EXPECT_EQ(to_string(MessageType::kGenerate), "generate");
  EXPECT_EQ(to_string(MessageType::kTrainValue), "train_value");
  EXPECT_EQ(to_string(MessageType::kShutdown), "shutdown");
  EXPECT_EQ(to_string(MessageType::kReply), "reply");
  EXPECT_EQ(to_string(MessageType::kError), "error");
  EXPECT_EQ(to_string(static_cast<MessageType>(55)), "unknown(55)");
  for (uint16_t t = 1; t <= 11; ++t)
    EXPECT_THAT(to_string(static_cast<MessageType>(t)), ::testing::Not(HasSubstr("unknown")));
}

TEST(Message, PeekRequestIdReadsOnlyVersionOneHeaders) {
  const auto frames = encode(sample_message());
  EXPECT_EQ(peek_request_id(frames[0]), 11u);
  auto parts = to_parts(frames);
  parts[0][5] = 9;  // version 9
  EXPECT_EQ(peek_request_id(to_frames(parts)[0]), std::nullopt);
  EXPECT_EQ(peek_request_id(Frame(std::string("short"))), std::nullopt);
}

}  // namespace
}  // namespace troupe::distributed
