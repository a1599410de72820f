// TensorBoard event files written without TensorFlow or protobuf: the Event / Summary messages of
// tensorboard/compat/proto (event.proto, summary.proto, tensor.proto; field numbers checked against the
// descriptors in tensorboard 2.21's *_pb2 modules) encoded by hand, framed as TFRecords (core/tfrecord.h).
// Not a reader and not a general summary API: scalars, string tensors for text, and SessionLog.START only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tfrecord.h"

namespace troupe::core::tensorboard {

inline constexpr const char* kFileVersion = "brain.Event:2";  // turns on SessionLog-based purging in readers
inline constexpr const char* kSourceWriter = "troupe";        // Event.source_metadata.writer of our files

// A string tensor for the text plugin: `cells` in row-major order, shape {} (one cell, rendered as markdown),
// {N} (a list) or {R, C} (rendered as an HTML table, each cell as markdown).
struct TextTensor {
  std::vector<int64_t> shape;      // {}, {N} or {R, C}
  std::vector<std::string> cells;  // (product of shape,)
};

// The serialized Event messages (the payload of one record each).
// Event{wall_time, file_version = "brain.Event:2", source_metadata{writer = "troupe"}}: the first record of a file.
std::string file_version_event(double wall_time);
// Event{wall_time, step, session_log{status = START}}: readers drop what they hold at steps >= `step`.
std::string session_start_event(double wall_time, int64_t step);
// Event{wall_time, step, summary{value{tag, simple_value = float(value)}}}: a float32 scalar, the form every
// TensorBoard loader shows (the Rust data server, the Python one, EventAccumulator.Scalars).
std::string scalar_event(const std::string& tag, int64_t step, double wall_time, double value);
// Event{wall_time, step, summary{value{tag, metadata{plugin "scalars", DATA_CLASS_SCALAR},
//   tensor{DT_DOUBLE, shape {}, double_val [value]}}}}: all 64 bits. Measured with tensorboard 2.21: the Python
// loader (`tensorboard --load_fast=false`, EventAccumulator.Tensors) shows it; the default Rust data server (0.7.2)
// drops DT_DOUBLE scalars without a word.
std::string double_scalar_event(const std::string& tag, int64_t step, double wall_time, double value);
// Event{..., summary{value{tag, metadata{plugin "text", DATA_CLASS_TENSOR}, tensor{DT_STRING, shape, string_val}}}}.
// DataError when the cells do not fill the shape.
std::string text_event(const std::string& tag, int64_t step, double wall_time, const TextTensor& text);

// "events.out.tfevents.<unix seconds>.<hostname>", the name TensorFlow's writers use (readers look for "tfevents").
std::string event_file_name(double wall_time, const std::string& hostname);

// One event file in `dir` (created if missing), named by event_file_name with ".1", ".2"... appended while that name
// is taken. Writes the file_version event first. Records reach readers at flush().
class EventFileWriter {
 public:
  EventFileWriter(const std::filesystem::path& dir, double wall_time, const std::string& hostname);
  void write(const std::string& event) { file_.append(event); }
  void flush() { file_.flush(); }
  void close() { file_.close(); }
  const std::filesystem::path& path() const { return file_.path(); }

 private:
  TfRecordWriter file_;
};

// Event files directly in `dir` (names holding "tfevents", as TensorBoard finds them), sorted by name.
std::vector<std::filesystem::path> event_files_in(const std::filesystem::path& dir);
// Whether `file` starts with the file_version event of a troupe export (a readable first record naming writer
// "troupe"); false for other writers' files and for unreadable or empty ones.
bool written_by_troupe(const std::filesystem::path& file);

}  // namespace troupe::core::tensorboard
