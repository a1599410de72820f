// Implementation of core/tensorboard_writer.h. Field numbers (tensorboard/compat/proto):
//   Event: wall_time 1 (double), step 2 (int64), file_version 3, summary 5, session_log 7, source_metadata 10
//   SourceMetadata: writer 1 · SessionLog: status 1 (START = 1) · Summary: value 1 (repeated)
//   Summary.Value: tag 1, simple_value 2 (float), tensor 8, metadata 9 · SummaryMetadata: plugin_data 1, data_class 4
//   PluginData: plugin_name 1, content 2 · TensorProto: dtype 1, tensor_shape 2, double_val 6 (packed), string_val 8
//   TensorShapeProto: dim 2 · Dim: size 1 · DataType: DT_DOUBLE 2, DT_STRING 7 · DataClass: SCALAR 1, TENSOR 2
#include "core/tensorboard_writer.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/errors.h"
#include "core/protobuf_wire.h"

namespace troupe::core::tensorboard {

namespace {

using protobuf::Encoder;

constexpr uint64_t kDtDouble = 2;
constexpr uint64_t kDtString = 7;
constexpr uint64_t kDataClassScalar = 1;
constexpr uint64_t kDataClassTensor = 2;
constexpr uint64_t kSessionStart = 1;

Encoder plugin_metadata(const std::string& plugin, uint64_t data_class) {
  Encoder plugin_data;
  plugin_data.add_bytes(1, plugin);
  Encoder metadata;
  metadata.add_message(1, plugin_data).add_varint(4, data_class);
  return metadata;
}

Encoder tensor_shape(const std::vector<int64_t>& shape) {
  Encoder out;
  for (int64_t size : shape) out.add_message(2, Encoder().add_int64(1, size));
  return out;
}

std::string summary_event(int64_t step, double wall_time, const Encoder& value) {
  Encoder summary;
  summary.add_message(1, value);
  Encoder event;
  event.add_double(1, wall_time).add_int64(2, step).add_message(5, summary);
  return event.bytes();
}

}  // namespace

std::string file_version_event(double wall_time) {
  Encoder source;
  source.add_bytes(1, kSourceWriter);
  Encoder event;
  event.add_double(1, wall_time).add_bytes(3, kFileVersion).add_message(10, source);
  return event.bytes();
}

std::string session_start_event(double wall_time, int64_t step) {
  Encoder session_log;
  session_log.add_varint(1, kSessionStart);
  Encoder event;
  event.add_double(1, wall_time).add_int64(2, step).add_message(7, session_log);
  return event.bytes();
}

std::string scalar_event(const std::string& tag, int64_t step, double wall_time, double value) {
  Encoder v;
  v.add_bytes(1, tag).add_float(2, static_cast<float>(value));  // round to nearest; beyond float's range: +-inf
  return summary_event(step, wall_time, v);
}

std::string double_scalar_event(const std::string& tag, int64_t step, double wall_time, double value) {
  Encoder tensor;
  tensor.add_varint(1, kDtDouble).add_message(2, tensor_shape({})).add_packed_doubles(6, {value});
  Encoder v;
  v.add_bytes(1, tag).add_message(8, tensor).add_message(9, plugin_metadata("scalars", kDataClassScalar));
  return summary_event(step, wall_time, v);
}

std::string text_event(const std::string& tag, int64_t step, double wall_time, const TextTensor& text) {
  const int64_t cells = std::accumulate(text.shape.begin(), text.shape.end(), int64_t{1}, std::multiplies<>());
  if (cells != static_cast<int64_t>(text.cells.size()))
    throw DataError("text summary '" + tag + "': " + std::to_string(text.cells.size()) +
                    " cells do not fill a tensor of " + std::to_string(cells));
  Encoder tensor;
  tensor.add_varint(1, kDtString).add_message(2, tensor_shape(text.shape));
  for (const auto& cell : text.cells) tensor.add_bytes(8, cell);
  Encoder v;
  v.add_bytes(1, tag).add_message(8, tensor).add_message(9, plugin_metadata("text", kDataClassTensor));
  return summary_event(step, wall_time, v);
}

std::string event_file_name(double wall_time, const std::string& hostname) {
  return "events.out.tfevents." + std::to_string(static_cast<int64_t>(std::floor(wall_time))) + "." + hostname;
}

namespace {

std::filesystem::path unused_name(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::path candidate = dir / name;
  for (int suffix = 1; std::filesystem::exists(candidate); ++suffix)
    candidate = dir / (name + "." + std::to_string(suffix));
  return candidate;
}

TfRecordWriter open_new_file(const std::filesystem::path& dir, double wall_time, const std::string& hostname) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir.string() + ": " + ec.message());
  return TfRecordWriter(unused_name(dir, event_file_name(wall_time, hostname)));
}

}  // namespace

EventFileWriter::EventFileWriter(const std::filesystem::path& dir, double wall_time, const std::string& hostname)
    : file_(open_new_file(dir, wall_time, hostname)) {
  file_.append(file_version_event(wall_time));
  file_.flush();
}

std::vector<std::filesystem::path> event_files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

bool written_by_troupe(const std::filesystem::path& file) {
  try {
    const auto first = read_first_tfrecord(file);
    if (!first) return false;
    for (const auto& field : protobuf::parse_fields(*first)) {
      if (field.number != 10 || field.type != protobuf::WireType::kLengthDelimited) continue;
      for (const auto& source : protobuf::parse_fields(field.bytes))
        if (source.number == 1 && source.bytes == kSourceWriter) return true;
    }
  } catch (const Error&) {
  }
  return false;
}

}  // namespace troupe::core::tensorboard
