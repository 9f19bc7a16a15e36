# Locates the LibTorch that ships inside the PyTorch Python package and defines
#   Mantra::torch        headers + CPU libraries (torch, torch_cpu, c10)
#   Mantra::torch_cuda   CUDA libraries (torch_cuda, c10_cuda), when torch has them
# We do not use find_package(Torch): for a CUDA-enabled torch it aborts when no CUDA
# toolkit is around, and it compiles for every GPU architecture; here CUDA is optional.
#
# Inputs: MANTRA_TORCH_ROOT (the torch package folder) or Python_EXECUTABLE / python3.
# Outputs: MANTRA_TORCH_ROOT, MANTRA_TORCH_VERSION, MANTRA_TORCH_CUDA_VERSION ("" if CPU-only).

if(TARGET Mantra::torch)
  return()
endif()

if(NOT MANTRA_TORCH_ROOT)
  if(NOT Python_EXECUTABLE)
    find_program(Python_EXECUTABLE NAMES python3 python REQUIRED)
  endif()
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c "import os, torch; print(os.path.dirname(torch.__file__))"
    OUTPUT_VARIABLE _mantra_torch_root OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _mantra_rc ERROR_QUIET)
  if(NOT _mantra_rc EQUAL 0 OR NOT _mantra_torch_root)
    message(FATAL_ERROR "mantra: cannot import torch with ${Python_EXECUTABLE}; "
      "install torch==2.11.0 there or pass -DMANTRA_TORCH_ROOT=<site-packages>/torch")
  endif()
  set(MANTRA_TORCH_ROOT "${_mantra_torch_root}" CACHE PATH "torch package folder (holds lib/ and include/)")
endif()

if(NOT EXISTS "${MANTRA_TORCH_ROOT}/lib/libtorch_cpu.so")
  message(FATAL_ERROR "mantra: ${MANTRA_TORCH_ROOT}/lib/libtorch_cpu.so not found (MANTRA_TORCH_ROOT is wrong)")
endif()

# version.py holds __version__ and cuda ('13.0' or None); read it without running Python.
file(STRINGS "${MANTRA_TORCH_ROOT}/version.py" _mantra_ver_lines REGEX "^(__version__|cuda)")
set(MANTRA_TORCH_VERSION "")
set(MANTRA_TORCH_CUDA_VERSION "")
foreach(_line IN LISTS _mantra_ver_lines)
  if(_line MATCHES "^__version__ = '([^']+)'")
    set(MANTRA_TORCH_VERSION "${CMAKE_MATCH_1}")
  elseif(_line MATCHES "^cuda.*= '([0-9.]+)'")
    set(MANTRA_TORCH_CUDA_VERSION "${CMAKE_MATCH_1}")
  endif()
endforeach()

set(_mantra_tl "${MANTRA_TORCH_ROOT}/lib")
add_library(Mantra::torch INTERFACE IMPORTED)
set_target_properties(Mantra::torch PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES
    "${MANTRA_TORCH_ROOT}/include;${MANTRA_TORCH_ROOT}/include/torch/csrc/api/include"
  INTERFACE_LINK_LIBRARIES
    "${_mantra_tl}/libtorch.so;${_mantra_tl}/libtorch_cpu.so;${_mantra_tl}/libc10.so"
  INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1"
  INTERFACE_COMPILE_FEATURES cxx_std_17)

if(MANTRA_TORCH_CUDA_VERSION AND EXISTS "${_mantra_tl}/libtorch_cuda.so")
  add_library(Mantra::torch_cuda INTERFACE IMPORTED)
  set_target_properties(Mantra::torch_cuda PROPERTIES
    INTERFACE_LINK_LIBRARIES "${_mantra_tl}/libtorch_cuda.so;${_mantra_tl}/libc10_cuda.so")
endif()
