# libtorch from the torch wheel in the project virtual environment, and the CUDA/NCCL path when that wheel
# is a CUDA build. Sets TORCH_LIBRARIES, TROUPE_WITH_CUDA and (with CUDA) the troupe_nccl target.

if(NOT Torch_DIR)
  if(NOT EXISTS ${TROUPE_PYTHON})
    message(FATAL_ERROR "No Python at TROUPE_PYTHON=${TROUPE_PYTHON}: run `make deps` (scripts/install-deps.sh), "
                        "which creates the project virtual environment with the pinned torch wheel")
  endif()
  execute_process(COMMAND ${TROUPE_PYTHON} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE TROUPE_TORCH_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TROUPE_PYTHON} cannot import torch: run `make deps`")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${TROUPE_TORCH_PREFIX})
endif()

# A CUDA wheel's CMake package wants the CUDA toolkit (nvcc, cudart); without one, build CPU-only.
include(CheckLanguage)
check_language(CUDA)
option(TROUPE_WITH_CUDA "Build the CUDA/NCCL path (needs a CUDA build of torch and the CUDA toolkit)" ON)
if(TROUPE_WITH_CUDA AND NOT CMAKE_CUDA_COMPILER)
  message(WARNING "TROUPE_WITH_CUDA: no CUDA compiler found; building the CPU path only")
  set(TROUPE_WITH_CUDA OFF CACHE BOOL "" FORCE)
endif()
if(TROUPE_WITH_CUDA)
  enable_language(CUDA)
  # Our own code compiles no kernels; this only quiets torch's architecture detection (there is no GPU).
  set(TORCH_CUDA_ARCH_LIST "9.0" CACHE STRING "")
endif()
find_package(Torch REQUIRED)
if(TROUPE_WITH_CUDA AND NOT TARGET torch_cuda)
  message(WARNING "TROUPE_WITH_CUDA: torch at ${TORCH_INSTALL_PREFIX} is a CPU build; building the CPU path only")
  set(TROUPE_WITH_CUDA OFF CACHE BOOL "" FORCE)
endif()

# The targets see the wheel's include directory without its fmt 12 headers (cmake/TroupeTorchHeaders.cmake says why).
include(${CMAKE_CURRENT_LIST_DIR}/TroupeTorchHeaders.cmake)
troupe_torch_headers(${TORCH_INSTALL_PREFIX} TROUPE_TORCH_INCLUDE)
foreach(t torch torch_cpu torch_cuda c10 c10_cuda torch_library)
  if(TARGET ${t})
    get_target_property(dirs ${t} INTERFACE_INCLUDE_DIRECTORIES)
    if(dirs)
      list(TRANSFORM dirs REPLACE "^${TORCH_INSTALL_PREFIX}/include$" ${TROUPE_TORCH_INCLUDE})
      set_target_properties(${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dirs}")
    endif()
  endif()
endforeach()

# libtorch_cuda's own dependencies (NCCL, cuBLAS, cuDNN, ...) live in the wheel's nvidia/* packages and are found at
# run time through its RUNPATH; the linker needs them named, or it picks up the CUDA toolkit's older NCCL.
if(TROUPE_WITH_CUDA)
  file(GLOB troupe_nvidia_lib_dirs LIST_DIRECTORIES true ${TORCH_INSTALL_PREFIX}/../nvidia/*/lib
       ${TORCH_INSTALL_PREFIX}/../nvidia/cu13/lib)
  foreach(dir IN LISTS troupe_nvidia_lib_dirs)
    list(APPEND TORCH_LIBRARIES "-Wl,-rpath-link,${dir}")
  endforeach()
endif()

# NCCL from the same wheel set as torch (nvidia-nccl-cu13), so that one libnccl.so.2 is loaded.
if(TROUPE_WITH_CUDA)
  execute_process(COMMAND ${TROUPE_PYTHON} -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])"
                  OUTPUT_VARIABLE TROUPE_NCCL_ROOT OUTPUT_STRIP_TRAILING_WHITESPACE)
  find_path(TROUPE_NCCL_INCLUDE nccl.h HINTS ${TROUPE_NCCL_ROOT}/include NO_DEFAULT_PATH)
  find_library(TROUPE_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${TROUPE_NCCL_ROOT}/lib NO_DEFAULT_PATH)
  if(NOT TROUPE_NCCL_INCLUDE OR NOT TROUPE_NCCL_LIBRARY)
    message(FATAL_ERROR "TROUPE_WITH_CUDA: NCCL not found in the torch wheel's nvidia-nccl package (${TROUPE_NCCL_ROOT})")
  endif()
  add_library(troupe_nccl INTERFACE)
  target_include_directories(troupe_nccl SYSTEM INTERFACE ${TROUPE_NCCL_INCLUDE})
  target_link_libraries(troupe_nccl INTERFACE ${TROUPE_NCCL_LIBRARY})
  message(STATUS "Troupe: CUDA path ON (torch ${Torch_VERSION}, NCCL ${TROUPE_NCCL_LIBRARY})")
else()
  message(STATUS "Troupe: CUDA path OFF (torch ${Torch_VERSION})")
endif()
