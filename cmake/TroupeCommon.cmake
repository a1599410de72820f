# Shared settings for every Troupe target: warnings, torch, logging, and the torch PCH.

add_library(troupe_warnings INTERFACE)
target_compile_options(troupe_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter -Winvalid-pch)

# Everything a Troupe target compiles against. Keeping one set of definitions for all
# targets lets them share one precompiled header.
add_library(troupe_common INTERFACE)
target_link_libraries(troupe_common INTERFACE troupe_warnings ${TORCH_LIBRARIES} spdlog::spdlog fmt::fmt
                      Threads::Threads)
target_include_directories(troupe_common INTERFACE ${CMAKE_SOURCE_DIR})
target_compile_features(troupe_common INTERFACE cxx_std_17)

# One precompiled <torch/torch.h> (about 20 s per TU otherwise), reused by every target.
add_library(troupe_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(troupe_pch PRIVATE troupe_common)
if(TROUPE_USE_PCH)
  target_precompile_headers(troupe_pch PRIVATE <torch/torch.h> <string> <vector> <map>)
endif()

# troupe_add_target_defaults(target): link the common interface and reuse the PCH.
function(troupe_use_common target)
  target_link_libraries(${target} PRIVATE troupe_common)
  if(TROUPE_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM troupe_pch)
  endif()
endfunction()
