// Implementation of core/hdf5_check.h: HDF5 error-stack capture, handle closing, and the
// 1-D column / scalar attribute primitives. No file layout decisions live here.
#include "core/hdf5_check.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/errors.h"

namespace troupe::core {

void h5_silence_auto_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace detail {
namespace {

// One "func(): description" per frame, outermost (the API call) first.
herr_t collect_frame(unsigned n, const H5E_error2_t* err, void* client_data) {
  auto* out = static_cast<std::string*>(client_data);
  if (!out->empty()) *out += "; ";
  *out += std::string(err->func_name ? err->func_name : "?") + "(): " + (err->desc ? err->desc : "");
  return 0;
}

}  // namespace

void h5_fail(const char* expr, const char* file, int line) {
  // H5Ewalk2 does not clear the default stack, so it still holds the failed call's frames.
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_frame, &stack);
  H5Eclear2(H5E_DEFAULT);
  if (stack.empty()) stack = "(HDF5 left no error stack)";
  ::troupe::detail::throw_io_error(file, line, std::string("HDF5 call failed: ") + expr + ": " + stack);
}

}  // namespace detail

H5Handle& H5Handle::operator=(H5Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.release();
  }
  return *this;
}

hid_t H5Handle::release() noexcept {
  hid_t id = id_;
  id_ = -1;
  return id;
}

namespace {

herr_t close_by_type(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    default: return -1;
  }
}

}  // namespace

void H5Handle::reset() noexcept {
  if (id_ >= 0) close_by_type(id_);
  id_ = -1;
}

void H5Handle::close() {
  hid_t id = release();
  if (id >= 0) TROUPE_H5(close_by_type(id));
}

namespace h5 {

H5Handle vlen_utf8_type() {
  H5Handle type{TROUPE_H5(H5Tcopy(H5T_C_S1))};
  TROUPE_H5(H5Tset_size(type.get(), H5T_VARIABLE));
  TROUPE_H5(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  return type;
}

namespace {

void write_scalar_attribute(hid_t obj, const std::string& key, hid_t file_type, hid_t mem_type, const void* value) {
  if (TROUPE_H5(H5Aexists(obj, key.c_str())) > 0) TROUPE_H5(H5Adelete(obj, key.c_str()));
  H5Handle space{TROUPE_H5(H5Screate(H5S_SCALAR))};
  H5Handle attr{TROUPE_H5(H5Acreate2(obj, key.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT))};
  TROUPE_H5(H5Awrite(attr.get(), mem_type, value));
}

std::string read_string_attribute(hid_t attr, hid_t file_type) {
  H5Handle mem_type{TROUPE_H5(H5Tcopy(file_type))};
  if (TROUPE_H5(H5Tis_variable_str(file_type)) > 0) {
    char* value = nullptr;
    TROUPE_H5(H5Aread(attr, mem_type.get(), &value));
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  std::string buf(TROUPE_H5(H5Tget_size(file_type)), '\0');
  TROUPE_H5(H5Aread(attr, mem_type.get(), buf.data()));
  return buf.substr(0, buf.find('\0'));  // fixed-length strings are NUL-padded
}

}  // namespace

void write_string_attribute(hid_t obj, const std::string& key, const std::string& value) {
  H5Handle type = vlen_utf8_type();
  const char* data = value.c_str();
  write_scalar_attribute(obj, key, type.get(), type.get(), &data);
}

void write_int_attribute(hid_t obj, const std::string& key, int64_t value, hid_t file_type) {
  write_scalar_attribute(obj, key, file_type, H5T_NATIVE_INT64, &value);
}

std::string read_attribute_text(hid_t obj, const std::string& key) {
  H5Handle attr{TROUPE_H5(H5Aopen(obj, key.c_str(), H5P_DEFAULT))};
  H5Handle space{TROUPE_H5(H5Aget_space(attr.get()))};
  H5Handle type{TROUPE_H5(H5Aget_type(attr.get()))};
  if (TROUPE_H5(H5Sget_simple_extent_npoints(space.get())) != 1) {
    throw DataError("attribute '" + key + "' is not a scalar");
  }
  switch (TROUPE_H5(H5Tget_class(type.get()))) {
    case H5T_STRING: return read_string_attribute(attr.get(), type.get());
    case H5T_INTEGER: {
      int64_t value = 0;
      TROUPE_H5(H5Aread(attr.get(), H5T_NATIVE_INT64, &value));
      return std::to_string(value);
    }
    case H5T_FLOAT: {
      double value = 0;
      TROUPE_H5(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value));
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", value);
      return buf;
    }
    default: throw DataError("attribute '" + key + "' is not a string, integer or float");
  }
}

namespace {
herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> attribute_names(hid_t obj) {
  std::vector<std::string> names;
  TROUPE_H5(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute_name, &names));
  return names;
}

bool path_exists(hid_t loc, const std::string& path) {
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    prefix = path.substr(0, end);
    if (TROUPE_H5(H5Lexists(loc, prefix.c_str(), H5P_DEFAULT)) <= 0) return false;
    start = end + 1;
  }
  return true;
}

std::vector<std::string> child_names(hid_t group, H5I_type_t kind) {
  H5G_info_t info;
  TROUPE_H5(H5Gget_info(group, &info));
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = TROUPE_H5(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT));
    std::string name(static_cast<size_t>(len) + 1, '\0');
    TROUPE_H5(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT));
    name.resize(static_cast<size_t>(len));
    H5Handle obj{TROUPE_H5(H5Oopen(group, name.c_str(), H5P_DEFAULT))};
    if (TROUPE_H5(H5Iget_type(obj.get())) == kind) names.push_back(name);
  }
  return names;
}

H5Handle create_column(hid_t loc, const std::string& name, hid_t file_type, hsize_t length, hsize_t chunk_rows) {
  hsize_t max_rows = H5S_UNLIMITED;
  H5Handle space{TROUPE_H5(H5Screate_simple(1, &length, &max_rows))};
  H5Handle dcpl{TROUPE_H5(H5Pcreate(H5P_DATASET_CREATE))};
  TROUPE_H5(H5Pset_chunk(dcpl.get(), 1, &chunk_rows));
  return H5Handle{
      TROUPE_H5(H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT))};
}

hsize_t column_length(hid_t dset) {
  H5Handle space{TROUPE_H5(H5Dget_space(dset))};
  hsize_t dims[1] = {0};
  if (TROUPE_H5(H5Sget_simple_extent_dims(space.get(), dims, nullptr)) != 1) {
    throw DataError("expected a 1-D dataset");
  }
  return dims[0];
}

void resize_column(hid_t dset, hsize_t rows) { TROUPE_H5(H5Dset_extent(dset, &rows)); }

void write_rows(hid_t dset, hid_t mem_type, hsize_t offset, hsize_t count, const void* buf) {
  H5Handle file_space{TROUPE_H5(H5Dget_space(dset))};
  TROUPE_H5(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &offset, nullptr, &count, nullptr));
  H5Handle mem_space{TROUPE_H5(H5Screate_simple(1, &count, nullptr))};
  TROUPE_H5(H5Dwrite(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, buf));
}

namespace {

// Reads rows [offset, offset + n) of `dset` as `mem_type` into `buf`; returns the dataspaces used, which
// variable-length reads need again to reclaim their memory.
struct Selection {
  H5Handle file_space, mem_space;
};

Selection read_range(hid_t dset, hid_t mem_type, hsize_t offset, hsize_t n, void* buf) {
  Selection sel{H5Handle{TROUPE_H5(H5Dget_space(dset))}, H5Handle{}};
  TROUPE_H5(H5Sselect_hyperslab(sel.file_space.get(), H5S_SELECT_SET, &offset, nullptr, &n, nullptr));
  sel.mem_space = H5Handle{TROUPE_H5(H5Screate_simple(1, &n, nullptr))};
  TROUPE_H5(H5Dread(dset, mem_type, sel.mem_space.get(), sel.file_space.get(), H5P_DEFAULT, buf));
  return sel;
}

template <typename T>
std::vector<T> read_numeric_rows(hid_t dset, hid_t mem_type, hsize_t offset, hsize_t rows) {
  const hsize_t length = column_length(dset);
  const hsize_t n = offset >= length ? 0 : std::min(rows, length - offset);
  std::vector<T> out(n);
  if (n > 0) read_range(dset, mem_type, offset, n, out.data());
  return out;
}

}  // namespace

std::vector<int64_t> read_int64_column(hid_t dset, hsize_t rows) { return read_int64_rows(dset, 0, rows); }

std::vector<double> read_double_column(hid_t dset, hsize_t rows) { return read_double_rows(dset, 0, rows); }

std::vector<int64_t> read_int64_rows(hid_t dset, hsize_t offset, hsize_t rows) {
  return read_numeric_rows<int64_t>(dset, H5T_NATIVE_INT64, offset, rows);
}

std::vector<double> read_double_rows(hid_t dset, hsize_t offset, hsize_t rows) {
  return read_numeric_rows<double>(dset, H5T_NATIVE_DOUBLE, offset, rows);
}

std::vector<std::string> read_string_column(hid_t dset, hsize_t rows) {
  hsize_t n = std::min(rows, column_length(dset));
  if (n == 0) return {};
  H5Handle type = vlen_utf8_type();
  std::vector<char*> raw(n, nullptr);
  Selection sel = read_range(dset, type.get(), 0, n, raw.data());
  std::vector<std::string> out;
  out.reserve(n);
  for (char* s : raw) out.emplace_back(s ? s : "");  // never-written rows read back as null
  TROUPE_H5(H5Dvlen_reclaim(type.get(), sel.mem_space.get(), H5P_DEFAULT, raw.data()));
  return out;
}

}  // namespace h5
}  // namespace troupe::core
