# troupe_torch_headers(prefix out): the torch wheel's include directory `prefix`/include as seen by Troupe's
# targets, i.e. a copy of it (symbolic links, under the build tree) without fmt/. Debian's spdlog and libfmt are
# fmt 9 while the wheel ships fmt 12 headers; an include path exposing those would compile our fmt calls against
# one version and link another. Torch's public API headers do not include fmt. Used by cmake/TroupeTorch.cmake and
# by the fuzz build (fuzz/CMakeLists.txt), which links libtorch_cpu without torch's CMake package.
function(troupe_torch_headers prefix out)
  set(dir ${CMAKE_BINARY_DIR}/torch-include)
  file(MAKE_DIRECTORY ${dir})
  file(GLOB entries RELATIVE ${prefix}/include ${prefix}/include/*)
  foreach(entry IN LISTS entries)
    if(NOT entry STREQUAL "fmt" AND NOT EXISTS ${dir}/${entry})
      file(CREATE_LINK ${prefix}/include/${entry} ${dir}/${entry} SYMBOLIC)
    endif()
  endforeach()
  set(${out} ${dir} PARENT_SCOPE)
endfunction()
