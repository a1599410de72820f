// Checked HDF5 C calls (TROUPE_H5), an owning handle for hid_t, and the few 1-D column and
// attribute primitives that Troupe's HDF5 files are built from.
// Not a C++ binding of HDF5: callers still speak the C API, one checked call at a time.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

// Evaluates an HDF5 C call and returns its result; a negative result throws troupe::IoError
// "<file>:<line>: HDF5 call failed: <expr>: <HDF5's error stack, outermost call first>".
#define TROUPE_H5(expr) ::troupe::core::detail::h5_check((expr), #expr, __FILE__, __LINE__)

namespace troupe::core {

// Turns off HDF5's automatic printing of error stacks to stderr (TROUPE_H5 puts them into
// the exception instead). Idempotent and cheap; call it before the first HDF5 call.
void h5_silence_auto_errors();

namespace detail {

// Walks HDF5's default error stack (before anything else clears it) and throws IoError.
[[noreturn]] void h5_fail(const char* expr, const char* file, int line);

// The one checking helper behind TROUPE_H5. HDF5 signals failure by a negative hid_t,
// herr_t, htri_t or ssize_t, by H5T_NO_CLASS / H5I_BADID (-1) for enums, by 0 for the
// size_t results (H5Tget_size) and by a null pointer.
template <typename T>
T h5_check(T ret, const char* expr, const char* file, int line) {
  bool failed = false;
  if constexpr (std::is_pointer_v<T>) {
    failed = ret == nullptr;
  } else if constexpr (std::is_enum_v<T>) {
    failed = static_cast<long long>(ret) < 0;
  } else if constexpr (std::is_signed_v<T>) {
    failed = ret < 0;
  } else {
    static_assert(std::is_unsigned_v<T>, "unexpected HDF5 return type");
    failed = ret == 0;
  }
  if (failed) h5_fail(expr, file, line);
  return ret;
}

}  // namespace detail

// Owns one HDF5 identifier (file, group, dataset, attribute, dataspace, datatype or property
// list) and closes it with the matching H5?close, chosen by H5Iget_type. Move-only.
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& other) noexcept : id_(other.release()) {}
  H5Handle& operator=(H5Handle&& other) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release() noexcept;
  void reset() noexcept;  // closes, ignoring errors (destructors must not throw)
  void close();           // closes, throwing IoError if HDF5 reports a failure

 private:
  hid_t id_ = -1;
};

namespace h5 {

// A variable-length UTF-8 string type (what h5py writes for `str`); the caller owns it.
H5Handle vlen_utf8_type();

// Scalar attributes on any object. Writing replaces an existing attribute of that name.
void write_string_attribute(hid_t obj, const std::string& key, const std::string& value);
void write_int_attribute(hid_t obj, const std::string& key, int64_t value, hid_t file_type);
// Reads a scalar string, integer or float attribute as text (integers in decimal, floats
// with 17 significant digits). Throws DataError for other types and shapes.
std::string read_attribute_text(hid_t obj, const std::string& key);
std::vector<std::string> attribute_names(hid_t obj);

// True when every component of the '/'-separated `path` exists below `loc`.
bool path_exists(hid_t loc, const std::string& path);
// Names of the direct children of `group` that are groups (H5I_GROUP) or datasets
// (H5I_DATASET), in name order.
std::vector<std::string> child_names(hid_t group, H5I_type_t kind);

// A 1-D, chunked, unlimited column of `file_type` with `length` rows (unwritten rows hold
// the fill value). Chunks of `chunk_rows` rows: appends touch one chunk at a time.
H5Handle create_column(hid_t loc, const std::string& name, hid_t file_type, hsize_t length, hsize_t chunk_rows);
hsize_t column_length(hid_t dset);
void resize_column(hid_t dset, hsize_t rows);
// Writes `count` rows of `mem_type` from `buf` starting at row `offset` (must exist).
void write_rows(hid_t dset, hid_t mem_type, hsize_t offset, hsize_t count, const void* buf);
// Read the first `rows` rows (all rows when `rows` is larger than the column).
std::vector<int64_t> read_int64_column(hid_t dset, hsize_t rows);
std::vector<double> read_double_column(hid_t dset, hsize_t rows);
std::vector<std::string> read_string_column(hid_t dset, hsize_t rows);
// Rows [offset, offset + rows), clipped to the column (empty when offset is past its end).
std::vector<int64_t> read_int64_rows(hid_t dset, hsize_t offset, hsize_t rows);
std::vector<double> read_double_rows(hid_t dset, hsize_t offset, hsize_t rows);

}  // namespace h5
}  // namespace troupe::core
