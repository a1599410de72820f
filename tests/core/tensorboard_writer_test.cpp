// Unit tests of the hand-written event-file stack: CRC-32C against published vectors, the protobuf wire encoding and
// the Event messages against bytes worked out by hand, TFRecord framing round trips and corruption. TensorBoard's own
// readers check these files in tests/cli/tensorboard_export_test.py.
#include "core/tensorboard_writer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/errors.h"
#include "core/protobuf_wire.h"
#include "core/tfrecord.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

using testing::ScratchDir;

// "0a 02 68" -> the bytes.
std::string hex(const std::string& spaced) {
  std::string out;
  for (size_t i = 0; i < spaced.size(); i += 3)
    out.push_back(static_cast<char>(std::stoi(spaced.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(Crc32c, PublishedVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC catalogue's check value for CRC-32/ISCSI
  EXPECT_EQ(crc32c(""), 0u);
  // RFC 3720, appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, MaskRotatesAndAdds) {
  EXPECT_EQ(mask_crc(0), 0xa282ead8u);
  // 0xE3069283 rotated right by 15 is 0x2507C60D; plus 0xa282ead8 (mod 2^32) is 0xC78AB0E5.
  EXPECT_EQ(mask_crc(0xE3069283u), 0xC78AB0E5u);
}

TEST(Protobuf, Varints) {
  const auto varint = [](uint64_t v) {
    std::string s;
    protobuf::append_varint(s, v);
    return s;
  };
  EXPECT_EQ(varint(0), hex("00"));
  EXPECT_EQ(varint(1), hex("01"));
  EXPECT_EQ(varint(127), hex("7f"));
  EXPECT_EQ(varint(128), hex("80 01"));
  EXPECT_EQ(varint(300), hex("ac 02"));
  EXPECT_EQ(varint(~uint64_t{0}), hex("ff ff ff ff ff ff ff ff ff 01"));
  // int64 -1 is the same ten bytes (two's complement), as protobuf's int64 fields.
  EXPECT_EQ(protobuf::Encoder().add_int64(2, -1).bytes(), hex("10 ff ff ff ff ff ff ff ff ff 01"));
}

TEST(Protobuf, FieldsOfEachWireType) {
  protobuf::Encoder e;
  e.add_bytes(1, "hi").add_varint(2, 150);
  EXPECT_EQ(e.bytes(), hex("0a 02 68 69 10 96 01"));
  EXPECT_EQ(protobuf::Encoder().add_double(1, 1.0).bytes(), hex("09 00 00 00 00 00 00 f0 3f"));
  EXPECT_EQ(protobuf::Encoder().add_float(2, 1.0f).bytes(), hex("15 00 00 80 3f"));
  EXPECT_EQ(protobuf::Encoder().add_packed_doubles(6, {0.5, -2.0}).bytes(),
            hex("32 10 00 00 00 00 00 00 e0 3f 00 00 00 00 00 00 00 c0"));
  protobuf::Encoder inner;
  inner.add_varint(1, 1);
  EXPECT_EQ(protobuf::Encoder().add_message(7, inner).bytes(), hex("3a 02 08 01"));
  EXPECT_EQ(protobuf::Encoder().add_message(2, protobuf::Encoder()).bytes(), hex("12 00"));
}

TEST(Protobuf, ParseFieldsReadsBackWhatWasWritten) {
  protobuf::Encoder e;
  e.add_bytes(1, "tag").add_int64(2, -5).add_double(3, 0.25).add_float(4, 2.0f);
  const auto fields = protobuf::parse_fields(e.bytes());
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].number, 1u);
  EXPECT_EQ(fields[0].bytes, "tag");
  EXPECT_EQ(static_cast<int64_t>(fields[1].varint), -5);
  EXPECT_EQ(fields[2].type, protobuf::WireType::kFixed64);
  EXPECT_EQ(fields[2].varint, 0x3FD0000000000000ull);  // 0.25
  EXPECT_EQ(fields[3].varint, 0x40000000ull);          // 2.0f
}

TEST(Protobuf, ParseFieldsRejectsTruncatedMessages) {
  EXPECT_THROW(protobuf::parse_fields(hex("0a 05 68 69")), DataError);  // 5 bytes claimed, 2 present
  EXPECT_THROW(protobuf::parse_fields(hex("10 96")), DataError);        // varint cut short
  EXPECT_THROW(protobuf::parse_fields(hex("0b")), DataError);           // wire type 3 (groups)
}

TEST(TensorBoardEvents, SessionStartByHand) {
  // Event{wall_time=1.5 (field 1, fixed64), step=7 (field 2), session_log (field 7) {status START=1}}
  EXPECT_EQ(tensorboard::session_start_event(1.5, 7), hex("09 00 00 00 00 00 00 f8 3f 10 07 3a 02 08 01"));
}

TEST(TensorBoardEvents, FileVersionByHand) {
  // Event{wall_time=0, file_version (3) "brain.Event:2", source_metadata (10) {writer (1) "troupe"}}
  EXPECT_EQ(tensorboard::file_version_event(0.0),
            hex("09 00 00 00 00 00 00 00 00 1a 0d") + "brain.Event:2" + hex("52 08 0a 06") + "troupe");
}

TEST(TensorBoardEvents, FloatScalarByHand) {
  // Event{wall_time=2.0, step=3, summary (5) {value (1) {tag (1) "a", simple_value (2, fixed32) 0.5f}}}
  EXPECT_EQ(tensorboard::scalar_event("a", 3, 2.0, 0.5),
            hex("09 00 00 00 00 00 00 00 40 10 03 2a 0a 0a 08 0a 01") + "a" + hex("15 00 00 00 3f"));
  // float32 rounding of 1/3: 0x3EAAAAAB
  EXPECT_EQ(tensorboard::scalar_event("a", 0, 0.0, 1.0 / 3.0).substr(18), hex("15 ab aa aa 3e"));
}

TEST(TensorBoardEvents, DoubleScalarByHand) {
  // tensor (Value field 8): dtype DT_DOUBLE=2, shape {} (empty message), double_val packed [0.5]     = 14 bytes
  const std::string tensor = hex("08 02 12 00 32 08 00 00 00 00 00 00 e0 3f");
  // metadata (Value field 9): plugin_data {plugin_name "scalars"}, data_class SCALAR=1                = 13 bytes
  const std::string metadata = hex("0a 09 0a 07") + "scalars" + hex("20 01");
  const std::string value = hex("0a 01") + "a" + hex("42 0e") + tensor + hex("4a 0d") + metadata;  // 34 bytes
  const std::string expected = hex("09 00 00 00 00 00 00 00 40 10 03 2a 24 0a 22") + value;
  EXPECT_EQ(tensorboard::double_scalar_event("a", 3, 2.0, 0.5), expected);
}

TEST(TensorBoardEvents, TextTableByHand) {
  // tensor: dtype DT_STRING=7, shape {dim{size 2} dim{size 1}}, string_val "k", "v"
  const std::string tensor = hex("08 07 12 08 12 02 08 02 12 02 08 01 42 01") + "k" + hex("42 01") + "v";  // 18
  const std::string metadata = hex("0a 06 0a 04") + "text" + hex("20 02");                                 // 10
  const std::string value = hex("0a 01") + "t" + hex("42 12") + tensor + hex("4a 0a") + metadata;          // 35
  EXPECT_EQ(tensorboard::text_event("t", 0, 0.0, {{2, 1}, {"k", "v"}}),
            hex("09 00 00 00 00 00 00 00 00 10 00 2a 25 0a 23") + value);
  EXPECT_THROW(tensorboard::text_event("t", 0, 0.0, {{2, 2}, {"k", "v"}}), DataError);
}

TEST(TfRecord, FrameLayout) {
  const std::string framed = tfrecord_frame("abc");
  ASSERT_EQ(framed.size(), 3u + 16u);
  EXPECT_EQ(framed.substr(0, 8), hex("03 00 00 00 00 00 00 00"));
  const auto le32 = [](uint32_t v) {
    std::string s;
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  };
  EXPECT_EQ(framed.substr(8, 4), le32(mask_crc(crc32c(hex("03 00 00 00 00 00 00 00")))));
  EXPECT_EQ(framed.substr(12, 3), "abc");
  EXPECT_EQ(framed.substr(15, 4), le32(mask_crc(crc32c("abc"))));
}

TEST(TfRecord, WriteReadRoundTripAndCorruption) {
  ScratchDir dir;
  const auto file = dir / "records";
  {
    TfRecordWriter w(file);
    w.append("first");
    w.append("");
    w.append(std::string(70000, 'x'));
    w.close();
  }
  EXPECT_EQ(read_tfrecords(file), (std::vector<std::string>{"first", "", std::string(70000, 'x')}));
  EXPECT_EQ(read_first_tfrecord(file).value(), "first");
  EXPECT_THROW(TfRecordWriter{file}, IoError);  // never clobbers an existing file

  std::string bytes = testing::read_file(file);
  bytes[13] ^= 1;  // a bit of "first"
  testing::write_file(file, bytes);
  try {
    read_tfrecords(file);
    FAIL() << "a flipped bit passed the CRC";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("record at byte 0"), std::string::npos) << e.what();
  }
  testing::write_file(file, tfrecord_frame("ok") + tfrecord_frame("cut").substr(0, 10));
  EXPECT_THROW(read_tfrecords(file), DataError);
  EXPECT_EQ(read_tfrecords(file, /*allow_partial_tail=*/true), std::vector<std::string>{"ok"});
}

TEST(EventFileWriter, NamesFilesUniquelyAndMarksThemAsOurs) {
  ScratchDir dir;
  tensorboard::EventFileWriter a(dir / "tb", 1700000000.7, "host");
  tensorboard::EventFileWriter b(dir / "tb", 1700000000.2, "host");
  EXPECT_EQ(a.path().filename(), "events.out.tfevents.1700000000.host");
  EXPECT_EQ(b.path().filename(), "events.out.tfevents.1700000000.host.1");
  a.close();
  EXPECT_TRUE(tensorboard::written_by_troupe(a.path()));
  testing::write_file(dir / "tb" / "events.out.tfevents.1.other",
                      tfrecord_frame(tensorboard::session_start_event(0, 0)));
  EXPECT_FALSE(tensorboard::written_by_troupe(dir / "tb" / "events.out.tfevents.1.other"));
  EXPECT_EQ(tensorboard::event_files_in(dir / "tb").size(), 3u);
}

}  // namespace
}  // namespace troupe::core
