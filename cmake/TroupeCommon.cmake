# Shared settings for every Troupe target: warnings, the torch-free base, the torch interface, and the torch
# precompiled header, which only sources that (transitively) include a torch header get.

add_library(troupe_warnings INTERFACE)
target_compile_options(troupe_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter -Winvalid-pch)

# What every Troupe target compiles against: no torch.
add_library(troupe_base INTERFACE)
target_link_libraries(troupe_base INTERFACE troupe_warnings spdlog::spdlog fmt::fmt Threads::Threads)
target_include_directories(troupe_base INTERFACE ${CMAKE_SOURCE_DIR})
target_compile_features(troupe_base INTERFACE cxx_std_20)

# Targets with torch sources add this. Keeping one set of definitions for all of them lets them share one
# precompiled header.
add_library(troupe_common INTERFACE)
target_link_libraries(troupe_common INTERFACE troupe_base ${TORCH_LIBRARIES})
# ATen's at::parallel_for is an inline template that runs `#pragma omp parallel` in the caller's translation unit:
# compiled without -fopenmp it silently runs on one thread (the torch wheel's CMake package does not add the flag).
# Troupe's CPU kernels (models/kernels.cpp) and the decoding gemv rely on it. At run time the one libgomp.so.1 is
# the wheel's (torch/lib comes first in the run path), which libtorch_cpu loads anyway.
target_compile_options(troupe_common INTERFACE -fopenmp)
target_link_options(troupe_common INTERFACE -fopenmp)
if(TROUPE_WITH_CUDA)
  target_compile_definitions(troupe_common INTERFACE TROUPE_WITH_CUDA)
endif()

# One precompiled <torch/torch.h> (about 20 s per TU otherwise), reused by every target.
add_library(troupe_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(troupe_pch PRIVATE troupe_common)
if(TROUPE_USE_PCH)
  target_precompile_headers(troupe_pch PRIVATE <torch/torch.h> <string> <vector> <map>)
endif()

# Test code compiles at TROUPE_TEST_OPT (-O0): a test body only drives the libraries, which stay optimised, and at
# -O2 the test binaries' template-heavy code (GoogleTest, torch) was about half of the from-scratch build. Their torch
# sources reuse a second precompiled header made with the same flag (GCC rejects a PCH built with other -O options).
set(TROUPE_TEST_OPT "-O0" CACHE STRING "Optimisation flag for test code (tests/)")
add_library(troupe_test_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(troupe_test_pch PRIVATE troupe_common)
target_compile_options(troupe_test_pch PRIVATE ${TROUPE_TEST_OPT})
if(TROUPE_USE_PCH)
  target_precompile_headers(troupe_test_pch PRIVATE <torch/torch.h> <string> <vector> <map>)
endif()

# troupe_uses_torch(file out): whether `file` includes a torch header, directly or through the project's own
# headers ("dir/name.h", resolved against the source root). Memoised in global properties.
function(troupe_uses_torch file out)
  get_property(known GLOBAL PROPERTY "TROUPE_TORCHY_${file}" SET)
  if(known)
    get_property(value GLOBAL PROPERTY "TROUPE_TORCHY_${file}")
    set(${out} ${value} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY "TROUPE_TORCHY_${file}" FALSE)  # breaks include cycles
  set(value FALSE)
  if(EXISTS ${file})
    file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    foreach(line IN LISTS lines)
      if(line MATCHES "#[ \t]*include[ \t]*<(torch|ATen|c10)/")
        set(value TRUE)
        break()
      elseif(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
        troupe_uses_torch(${CMAKE_SOURCE_DIR}/${CMAKE_MATCH_1} sub)
        if(sub)
          set(value TRUE)
          break()
        endif()
      endif()
    endforeach()
  endif()
  set_property(GLOBAL PROPERTY "TROUPE_TORCHY_${file}" ${value})
  set(${out} ${value} PARENT_SCOPE)
endfunction()

# troupe_use_common(target [pch]): link torch and reuse the PCH (troupe_pch, or `pch`) in the sources that include
# torch; torch-free
# sources of the same target compile without it (loading the 0.9 GB PCH costs ~15 CPU-seconds per file).
# With TROUPE_UNITY the target's sources compile in unity groups of TROUPE_UNITY_BATCH: torch groups with the PCH
# (one header load and one set of template instantiations per group instead of per file) and torch-free groups
# without it (CLI11, nlohmann/json, fmt and spdlog parsed once per group). Sources with their own compile options
# (SKIP_UNITY_BUILD_INCLUSION) compile alone.
function(troupe_use_common target)
  set(pch troupe_pch)
  if(ARGC GREATER 1)
    set(pch ${ARGV1})
  endif()
  target_link_libraries(${target} PRIVATE troupe_common)
  if(NOT TROUPE_USE_PCH)
    return()
  endif()
  target_precompile_headers(${target} REUSE_FROM ${pch})
  get_target_property(sources ${target} SOURCES)
  get_target_property(dir ${target} SOURCE_DIR)
  set(torch_sources "")
  set(base_sources "")
  foreach(src IN LISTS sources)
    if(NOT IS_ABSOLUTE ${src})
      set(src ${dir}/${src})
    endif()
    string(FIND "${src}" "${CMAKE_SOURCE_DIR}/" pos)
    if(NOT src MATCHES "\\.cpp$" OR NOT pos EQUAL 0)
      continue()
    endif()
    get_source_file_property(alone ${src} TARGET_DIRECTORY ${target} SKIP_UNITY_BUILD_INCLUSION)
    troupe_uses_torch(${src} torchy)
    if(NOT torchy)
      set_source_files_properties(${src} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
    if(alone)
      continue()
    elseif(torchy)
      list(APPEND torch_sources ${src})
    else()
      list(APPEND base_sources ${src})
    endif()
  endforeach()
  if(NOT TROUPE_UNITY)
    return()
  endif()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
  get_target_property(binary_dir ${target} BINARY_DIR)
  foreach(kind torch base)
    set(i 0)
    foreach(src IN LISTS ${kind}_sources)
      math(EXPR group "${i} / ${TROUPE_UNITY_BATCH}")
      set_source_files_properties(${src} TARGET_DIRECTORY ${target} PROPERTIES UNITY_GROUP ${kind}_${group})
      math(EXPR i "${i} + 1")
      if(kind STREQUAL "base")
        # The generated unity file of a torch-free group must not get the torch PCH either.
        set_source_files_properties(${binary_dir}/CMakeFiles/${target}.dir/Unity/unity_${kind}_${group}_cxx.cxx
                                    TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
      endif()
    endforeach()
  endforeach()
endfunction()

# troupe_use_base(target): a target with no torch at all (no PCH, no libtorch link).
function(troupe_use_base target)
  target_link_libraries(${target} PRIVATE troupe_base)
endfunction()
