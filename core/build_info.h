// Build metadata baked in at build time (see cmake/build_info.cmake).
#pragma once

namespace troupe::core {
const char* git_sha();         // short git sha of the source tree, "-dirty" if modified, or "unknown"
const char* troupe_version();  // project version from CMakeLists.txt
const char* default_python();  // the project venv's python (TROUPE_PYTHON at configure time)
}  // namespace troupe::core
