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
if(TROUPE_WITH_CUDA)
  target_compile_definitions(troupe_common INTERFACE TROUPE_WITH_CUDA)
endif()

# One precompiled <torch/torch.h> (about 20 s per TU otherwise), reused by every target.
add_library(troupe_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(troupe_pch PRIVATE troupe_common)
if(TROUPE_USE_PCH)
  target_precompile_headers(troupe_pch PRIVATE <torch/torch.h> <string> <vector> <map>)
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

# troupe_use_common(target): link torch and reuse the PCH in the sources that include torch; torch-free
# sources of the same target compile without it (loading the 0.9 GB PCH costs ~15 CPU-seconds per file).
# With TROUPE_UNITY the torch sources compile in batches (one PCH load and one set of template
# instantiations per batch instead of per file); torch-free sources stay separate.
function(troupe_use_common target)
  target_link_libraries(${target} PRIVATE troupe_common)
  if(NOT TROUPE_USE_PCH)
    return()
  endif()
  target_precompile_headers(${target} REUSE_FROM troupe_pch)
  if(TROUPE_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${TROUPE_UNITY_BATCH})
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(dir ${target} SOURCE_DIR)
  foreach(src IN LISTS sources)
    if(NOT IS_ABSOLUTE ${src})
      set(src ${dir}/${src})
    endif()
    string(FIND "${src}" "${CMAKE_SOURCE_DIR}/" pos)
    if(src MATCHES "\\.cpp$" AND pos EQUAL 0)
      troupe_uses_torch(${src} torchy)
      if(NOT torchy)
        set_source_files_properties(${src} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON
                                    SKIP_UNITY_BUILD_INCLUSION ON)
      endif()
    endif()
  endforeach()
endfunction()

# troupe_use_base(target): a target with no torch at all (no PCH, no libtorch link).
function(troupe_use_base target)
  target_link_libraries(${target} PRIVATE troupe_base)
endfunction()
