// Tests for models/safetensors.h: round trips of every dtype and odd shapes, metadata, every malformed header
// built byte by byte, and cross-checks against files written and read by Python (struct + json + numpy).
#include "models/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using troupe::testing::ScratchDir;

std::string le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A file whose header is `header` verbatim (length prefix computed) followed by `data`.
std::string file_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// The DataError message load_safetensors throws for `path`; checks read_safetensors_header agrees.
std::string data_error_of(const fs::path& path) {
  std::string header_message;
  try {
    read_safetensors_header(path);
  } catch (const DataError& e) {
    header_message = e.what();
  }
  try {
    load_safetensors(path);
  } catch (const DataError& e) {
    EXPECT_EQ(header_message, e.what()) << "header-only read and full load disagree";
    return e.what();
  }
  ADD_FAILURE() << "no DataError for " << path;
  return "";
}

void expect_same(const NamedTensors& expected, const SafetensorsFile& got) {
  ASSERT_EQ(expected.size(), got.tensors.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(expected[i].first, got.tensors[i].first);
    const at::Tensor& a = expected[i].second;
    const at::Tensor& b = got.tensors[i].second;
    EXPECT_EQ(a.scalar_type(), b.scalar_type());
    EXPECT_EQ(a.sizes(), b.sizes());
    EXPECT_TRUE(b.is_contiguous());
    EXPECT_TRUE(torch::equal(a.contiguous(), b));
  }
}

NamedTensors every_dtype() {
  torch::manual_seed(7);
  return {{"f32", torch::randn({2, 3, 4})},
          {"f64", torch::randn({5}, torch::kFloat64)},
          {"f16", torch::randn({3, 2}).to(torch::kHalf)},
          {"bf16", torch::randn({4, 1}).to(torch::kBFloat16)},
          {"i64", torch::tensor({-(int64_t{1} << 62), int64_t{-5}, int64_t{1234567890123}})},
          {"i32", torch::randint(-100000, 100000, {7}, torch::kInt32)},
          {"i16", torch::randint(-30000, 30000, {2, 2}, torch::kInt16)},
          {"i8", torch::tensor({-128, -1, 0, 127}, torch::kInt8)},
          {"u8", torch::tensor({0, 1, 200, 255}, torch::kUInt8)},
          {"bool", torch::tensor({true, false, true})},
          {"scalar", torch::tensor(3.25)},                                         // 0-d
          {"empty", torch::empty({0, 3})},                                         // no bytes
          {"empty_i64", torch::empty({4, 0, 2}, torch::kInt64)},                   // no bytes, between others
          {"transposed", torch::arange(12, torch::kFloat32).reshape({3, 4}).t()},  // not contiguous
          {"scalar_i8", torch::tensor(-7, torch::kInt8)}};
}

TEST(Safetensors, RoundTripsEveryDtypeAndShape) {
  ScratchDir dir("safetensors");
  const NamedTensors tensors = every_dtype();
  save_safetensors(dir / "all.safetensors", tensors);
  expect_same(tensors, load_safetensors(dir / "all.safetensors"));
  // Only the final file remains: the temp file was renamed into place.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Safetensors, HeaderIsPaddedAndReadableAlone) {
  ScratchDir dir("safetensors");
  const NamedTensors tensors = every_dtype();
  save_safetensors(dir / "all.safetensors", tensors);
  const std::string bytes = troupe::testing::read_file(dir / "all.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  const SafetensorsHeader header = read_safetensors_header(dir / "all.safetensors");
  EXPECT_EQ(header.data_start, 8 + n);
  ASSERT_EQ(header.entries.size(), tensors.size());
  uint64_t offset = 0, bytes_total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry& e = header.entries[i];
    EXPECT_EQ(e.name, tensors[i].first);
    EXPECT_EQ(e.scalar_type, tensors[i].second.scalar_type());
    EXPECT_EQ(e.dtype, safetensors_dtype(tensors[i].second.scalar_type()));
    EXPECT_EQ(c10::IntArrayRef(e.shape), tensors[i].second.sizes());
    EXPECT_EQ(e.begin, offset);
    offset = e.end;
    bytes_total += tensors[i].second.numel() * tensors[i].second.element_size();
  }
  EXPECT_EQ(header.data_size, bytes_total);
  EXPECT_EQ(bytes.size(), header.data_start + bytes_total);
  EXPECT_EQ(header.entries[0].dtype, "F32");
  EXPECT_EQ(header.entries[3].dtype, "BF16");
  EXPECT_EQ(header.entries[9].dtype, "BOOL");
  EXPECT_TRUE(header.entries[10].shape.empty());
}

TEST(Safetensors, MetadataRoundTrips) {
  ScratchDir dir("safetensors");
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "h\xc3\xa9llo \"quoted\"\n"}};
  save_safetensors(dir / "m.safetensors", {{"x", torch::ones({2})}}, metadata);
  const SafetensorsFile file = load_safetensors(dir / "m.safetensors");
  EXPECT_EQ(file.metadata, metadata);
  EXPECT_EQ(file.names(), std::vector<std::string>{"x"});
  EXPECT_TRUE(file.contains("x"));
  EXPECT_TRUE(torch::equal(file.get("x"), torch::ones({2})));
  try {
    file.get("y");
    ADD_FAILURE() << "no DataError for a missing tensor";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'y'"));
    EXPECT_THAT(e.what(), HasSubstr("m.safetensors"));
  }
  EXPECT_TRUE(read_safetensors_header(dir / "m.safetensors").metadata == metadata);
}

TEST(Safetensors, EmptyFileAndNoTensors) {
  ScratchDir dir("safetensors");
  save_safetensors(dir / "none.safetensors", {});
  const SafetensorsFile file = load_safetensors(dir / "none.safetensors");
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
}

TEST(Safetensors, SaveRejectsBadNamesAndLeavesNoFile) {
  ScratchDir dir("safetensors");
  const fs::path path = dir / "dup.safetensors";
  auto message = [&](const NamedTensors& t) -> std::string {
    try {
      save_safetensors(path, t);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(message({{"a", torch::ones({1})}, {"a", torch::zeros({1})}}), HasSubstr("'a': duplicate tensor name"));
  EXPECT_THAT(message({{"__metadata__", torch::ones({1})}}), HasSubstr("reserved"));
  EXPECT_THAT(message({{"c", torch::ones({1}, torch::kComplexFloat)}}), HasSubstr("unsupported tensor dtype"));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 0);
}

TEST(Safetensors, ReplacesAnExistingFileAtomically) {
  ScratchDir dir("safetensors");
  save_safetensors(dir / "x.safetensors", {{"x", torch::ones({3})}});
  save_safetensors(dir / "x.safetensors", {{"y", torch::zeros({2}, torch::kInt64)}});
  const SafetensorsFile file = load_safetensors(dir / "x.safetensors");
  EXPECT_EQ(file.names(), std::vector<std::string>{"y"});
}

TEST(Safetensors, MissingFileIsAnIoError) {
  ScratchDir dir("safetensors");
  EXPECT_THROW(load_safetensors(dir / "absent.safetensors"), IoError);
}

// One malformed file: bytes, and the phrase its DataError must contain.
struct Malformed {
  std::string name;
  std::string bytes;
  std::string phrase;
};

std::vector<Malformed> malformed_cases() {
  const std::string eight(8, '\x01'), twelve(12, '\x02');
  const std::string f32_2 = R"("dtype":"F32","shape":[2])";
  return {
      {"short", "abc", "too short for a safetensors header"},
      {"header_beyond_file", le64(64) + "{}", "header length 64 exceeds the file size"},
      {"header_absurd", le64(200'000'000) + "{}", "is absurd (over 100 MB)"},
      {"not_json", file_bytes("{\"a\": nope}", ""), "header is not valid JSON"},
      {"truncated_json", file_bytes("{\"a\": {\"dtype\"", ""), "header is not valid JSON"},
      {"not_object", file_bytes("[1, 2]  ", ""), "header is not a JSON object"},
      {"unknown_dtype", file_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x"),
       "tensor 'w': unknown or unsupported dtype 'F8_E4M3'"},
      {"negative_dim", file_bytes(R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}})", eight),
       "tensor 'w': shape [-1,2] must hold non-negative integers"},
      {"fractional_dim", file_bytes(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight),
       "tensor 'w': shape"},
      {"offsets_one", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0]}})", eight),
       "tensor 'w': data_offsets must be [begin, end]"},
      {"offsets_negative", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[-8,0]}})", eight),
       "tensor 'w': data_offsets must be [begin, end]"},
      {"offsets_reversed", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[8,0]}})", eight),
       "tensor 'w': data_offsets [8, 0] has begin > end"},
      {"end_beyond_buffer", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[4,12]}})", eight),
       "tensor 'w': data_offsets [4, 12] ends beyond the data buffer (8 bytes)"},
      {"size_mismatch", file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
       "tensor 'w': size mismatch"},
      {"overlap",
       file_bytes(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 + R"(,"data_offsets":[4,12]}})",
                  twelve),
       "tensor 'b': overlaps tensor 'a'"},
      {"gap",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],)"
                  R"("data_offsets":[8,12]}})",
                  twelve),
       "tensor 'b': gap in the data buffer: bytes 4..8"},
      {"trailing_bytes", file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight),
       "data buffer not fully covered"},
      {"duplicate",
       file_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],)"
                  R"("data_offsets":[1,2]}})",
                  "xy"),
       "tensor 'a': duplicate name"},
      {"metadata_not_strings", file_bytes(R"({"__metadata__":{"n":1}})", ""), "__metadata__.n must be a string"},
      {"entry_not_object", file_bytes(R"({"a":[1]})", ""), "tensor 'a': expected an object"},
      {"no_dtype", file_bytes(R"({"a":{"shape":[0],"data_offsets":[0,0]}})", ""), "tensor 'a': missing"},
      // Empty, but torch's strides for it overflow int64 (found by fuzz/fuzz_safetensors: a c10::Error escaped).
      {"empty_with_huge_dims",
       file_bytes(R"({"z":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})",
                  ""),
       "tensor 'z': shape [0,4611686018427387904,4611686018427387904] overflows"},
  };
}

TEST(Safetensors, MalformedFilesAreDataErrorsNamingFileAndTensor) {
  ScratchDir dir("safetensors");
  for (const Malformed& c : malformed_cases()) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir / (c.name + ".safetensors");
    troupe::testing::write_file(path, c.bytes);
    const std::string message = data_error_of(path);
    EXPECT_THAT(message, HasSubstr(path.string()));
    EXPECT_THAT(message, HasSubstr(c.phrase));
  }
}

TEST(Safetensors, TruncatedFileIsADataError) {
  ScratchDir dir("safetensors");
  save_safetensors(dir / "full.safetensors", {{"w", torch::randn({16})}});
  std::string bytes = troupe::testing::read_file(dir / "full.safetensors");
  bytes.resize(bytes.size() - 4);
  troupe::testing::write_file(dir / "cut.safetensors", bytes);
  const std::string message = data_error_of(dir / "cut.safetensors");
  EXPECT_THAT(message, HasSubstr("tensor 'w'"));
  EXPECT_THAT(message, HasSubstr("ends beyond the data buffer"));
}

TEST(Safetensors, AcceptsEmptyTensorsAtAnyBoundaryAndUnpaddedHeaders) {
  ScratchDir dir("safetensors");
  // Header order differs from data order; the header is not padded; an empty tensor sits at the end.
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[3,3]},)"
      R"("a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}})";
  troupe::testing::write_file(dir / "x.safetensors", file_bytes(header, "\x07\x08\x09"));
  const SafetensorsFile file = load_safetensors(dir / "x.safetensors");
  EXPECT_EQ(file.names(), (std::vector<std::string>{"b", "e", "a"}));
  EXPECT_EQ(file.get("a").item<uint8_t>(), 7);
  EXPECT_EQ(file.get("a").dim(), 0);
  EXPECT_EQ(file.get("b")[1].item<uint8_t>(), 9);
  EXPECT_EQ(file.get("e").sizes().vec(), (std::vector<int64_t>{0, 5}));
}

// ---- Cross-checks with Python (the venv's torch; the safetensors package is not needed here) ----

bool have_python() { return std::string(TROUPE_PYTHON).size() > 0 && fs::exists(TROUPE_PYTHON); }

// Writes a safetensors file by hand from seeded torch tensors, with the header order unlike the data order
// and no padding, and writes the expected values (floats as float.hex(), exact) as JSON.
constexpr const char* kPythonWriter = R"PY(
import json, struct, sys, torch
torch.manual_seed(0)
tensors = {
    "randn_f32": torch.randn(3, 4),
    "randn_f64": torch.randn(5, dtype=torch.float64),
    "randn_f16": torch.randn(2, 3).half(),
    "randn_bf16": torch.randn(6).bfloat16(),
    "arange_i64": torch.arange(-5, 5, dtype=torch.int64).reshape(2, 5) * 1000000007,
    "ints_i32": torch.randint(-2**31, 2**31 - 1, (4,), dtype=torch.int32),
    "bytes_u8": torch.randint(0, 256, (2, 2, 2), dtype=torch.uint8),
    "mask_bool": torch.rand(5) > 0.5,
    "scalar_f32": torch.tensor(2.5),
    "empty_f32": torch.zeros(0, 3),
}
names = { torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL" }
def raw(t):
    t = t.contiguous()
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
header, data, expected = {"__metadata__": {"writer": "python"}}, b"", {}
for name, t in reversed(list(tensors.items())):  # data in reverse order
    b = raw(t)
    header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
ordered = {"__metadata__": header["__metadata__"]}
ordered.update({name: header[name] for name in tensors})   # header in forward order
for name, t in tensors.items():
    values = t.double().flatten().tolist() if t.is_floating_point() else t.long().flatten().tolist()
    expected[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                      "values": [v.hex() if t.is_floating_point() else v for v in values]}
h = json.dumps(ordered).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
with open(sys.argv[2], "w") as f:
    json.dump(expected, f)
)PY";

TEST(Safetensors, ReadsAFileWrittenByPython) {
  ASSERT_TRUE(have_python()) << "no " << TROUPE_PYTHON << ": run `make deps`";
  ScratchDir dir("safetensors");
  const fs::path path = dir / "py.safetensors";
  const fs::path expected_path = dir / "expected.json";
  const auto result =
      troupe::testing::run_process({TROUPE_PYTHON, "-c", kPythonWriter, path.string(), expected_path.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json expected = nlohmann::json::parse(troupe::testing::read_file(expected_path));
  const SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"writer", "python"}}));
  std::vector<std::string> names;
  for (const auto& [name, e] : expected.items()) names.push_back(name);  // nlohmann sorts keys
  std::vector<std::string> got = file.names();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, names);
  EXPECT_EQ(file.names().front(), "randn_f32");  // header order, not data order
  for (const auto& [name, e] : expected.items()) {
    SCOPED_TRACE(name);
    const at::Tensor& t = file.get(name);
    EXPECT_EQ(safetensors_dtype(t.scalar_type()), e["dtype"].get<std::string>());
    EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>());
    const auto& values = e["values"];
    ASSERT_EQ(static_cast<size_t>(t.numel()), values.size());
    const at::Tensor flat = t.flatten();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (t.is_floating_point()) {
        const double want = std::strtod(values[i].get<std::string>().c_str(), nullptr);
        EXPECT_EQ(flat[i].item<double>(), want) << "element " << i;
      } else {
        EXPECT_EQ(flat[i].item<int64_t>(), values[i].get<int64_t>()) << "element " << i;
      }
    }
  }
}

// Parses a C++-written file with json + numpy.frombuffer and checks every byte range, the padding and the
// values against the same formulas evaluated in Python torch; exits non-zero on any mismatch.
constexpr const char* kPythonReader = R"PY(
import json, struct, sys, numpy as np, torch
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert (8 + n) % 8 == 0, f"data not 8-byte aligned: header {n}"
header = json.loads(raw[8:8 + n].decode("utf-8"))
data = raw[8 + n:]
meta = header.pop("__metadata__")
assert meta == {"format": "pt", "by": "troupe"}, meta
assert list(header) == ["f32", "f16", "bf16", "i64", "u8", "bool", "scalar", "empty", "t"], list(header)
spans = sorted(tuple(v["data_offsets"]) for v in header.values())
end = 0
for b, e in spans:
    assert b == end, spans
    end = e
assert end == len(data), (end, len(data))
np_types = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}
def load(name):
    h = header[name]
    b, e = h["data_offsets"]
    a = np.frombuffer(data[b:e], dtype=np_types[h["dtype"]]).reshape(h["shape"])
    t = torch.from_numpy(a.copy())
    return t.view(torch.bfloat16) if h["dtype"] == "BF16" else t
x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.37 - 3
expected = {
    "f32": x,
    "f16": (x[0] / 7).half(),
    "bf16": (x[1] * 11).bfloat16(),
    "i64": torch.arange(6, dtype=torch.int64).reshape(3, 2) * -123456789012,
    "u8": torch.arange(250, 256, dtype=torch.int64).to(torch.uint8),
    "bool": torch.tensor([True, False, False, True]),
    "scalar": torch.tensor(-1.5, dtype=torch.float64),
    "empty": torch.zeros(2, 0, dtype=torch.float32),
    "t": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
}
for name, want in expected.items():
    got = load(name)
    if got.dtype != want.dtype or list(got.shape) != list(want.shape) or not torch.equal(got, want):
        print(f"mismatch in {name}: got {got} want {want}")
        sys.exit(1)
print("ok")
)PY";

TEST(Safetensors, WritesAFilePythonReads) {
  ASSERT_TRUE(have_python()) << "no " << TROUPE_PYTHON << ": run `make deps`";
  ScratchDir dir("safetensors");
  const at::Tensor x = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) * 0.37 - 3;
  const NamedTensors tensors{
      {"f32", x},
      {"f16", (x[0] / 7).to(torch::kHalf)},
      {"bf16", (x[1] * 11).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kInt64).reshape({3, 2}) * int64_t{-123456789012}},
      {"u8", torch::arange(250, 256, torch::kInt64).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, false, true})},
      {"scalar", torch::tensor(-1.5, torch::kFloat64)},
      {"empty", torch::zeros({2, 0})},
      {"t", torch::arange(6, torch::kFloat32).reshape({2, 3}).t()},
  };
  save_safetensors(dir / "cpp.safetensors", tensors, {{"format", "pt"}, {"by", "troupe"}});
  const auto result =
      troupe::testing::run_process({TROUPE_PYTHON, "-c", kPythonReader, (dir / "cpp.safetensors").string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("ok"));
}

}  // namespace
}  // namespace troupe::models
