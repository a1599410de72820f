// The dashboard page's files (dashboard/assets/: index.html, app.js, style.css), embedded into the binary at build
// time (CMakeLists.txt writes them into a generated .cpp), so an installed troupe needs no source tree. Not a file
// server: only these names exist.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::dashboard {

struct Asset {
  std::string_view name;  // file name under dashboard/assets/, e.g. "app.js"
  std::string_view body;  // its bytes
};

// Every embedded asset (defined in the generated dashboard_assets.cpp).
const std::vector<Asset>& embedded_assets();

// The asset called `name`, or nullptr.
const Asset* find_asset(std::string_view name);

// "text/html; charset=utf-8", "text/javascript; charset=utf-8", ... by the file's extension.
std::string content_type_for(std::string_view name);

}  // namespace troupe::dashboard
