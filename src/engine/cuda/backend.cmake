# The cuda backend, included by src/engine/CMakeLists.txt: fp16 NHWC inference on cuDNN 9
# and cuBLAS plus our kernels, GPU pre/post-processing, CUDA graphs. Built when ITS_CUDA is on
# (the default wherever the CUDA toolkit is found); sm_90 machine code plus compute_90 PTX, so
# CI compiles it without a GPU.
#
# The backend is a loadable module, its_cuda.so (in <build>/lib), that the engine opens with
# dlopen only when an engine asks for "cuda" (docs/engine.md, "Backend modules"): a process
# that never does maps no CUDA library. The module holds the backend (C), the kernels (a
# static library, its_engine_cudak: CUDA C++ behind extern "C" launchers), the static CUDA
# runtime, and links cuBLAS and cuDNN; it exports one symbol (its_backend_module). The
# engine's and core's functions it calls stay undefined in it and resolve, at dlopen, to the
# executable's: cuda/host_symbols.txt lists them, and every executable linking its_engine
# exports them (ITS_ENGINE_HOST_SYMBOLS, src/engine/CMakeLists.txt).
if(NOT ITS_CUDA)
    return()
endif()
if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90-real 90-virtual)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

# cuDNN 9: beside the toolkit on the dev/CI machines; on the GPU machine inside Python's
# nvidia/cudnn package (pass CUDNN_ROOT).
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS $ENV{CUDNN_ROOT} ${CUDNN_ROOT}
          ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS $ENV{CUDNN_ROOT} ${CUDNN_ROOT}
             ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    message(FATAL_ERROR "ITS_CUDA: cuDNN 9 not found (set CUDNN_ROOT, or -DITS_CUDA=OFF)")
endif()

set(_cu ${CMAKE_CURRENT_LIST_DIR})
# The kernels; also linked directly by the kernels' own GPU test (tests/cuda), which then
# brings its_core itself.
add_library(its_engine_cudak STATIC ${_cu}/cuda_check.c ${_cu}/prepost.cu ${_cu}/kernels.cu)
target_include_directories(its_engine_cudak PUBLIC ${ITS_ROOT}/include ${CUDNN_INCLUDE_DIR}
                           PRIVATE ${_cu})
target_link_libraries(its_engine_cudak PUBLIC CUDA::cudart_static CUDA::cublas ${CUDNN_LIBRARY}
                      stdc++)
target_compile_options(its_engine_cudak PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter --Werror=all-warnings -lineinfo>)
set_target_properties(its_engine_cudak PROPERTIES POSITION_INDEPENDENT_CODE ON
                      C_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden)

add_library(its_cuda MODULE ${_cu}/cuda_backend.c ${_cu}/cuda_plan.c ${_cu}/cuda_ops.c
            ${_cu}/cuda_graph.c ${_cu}/cuda_frames.c ${_cu}/cudnn_fused.c
            ${_cu}/cuda_plancache.c)
target_include_directories(its_cuda PRIVATE ${ITS_ROOT}/include ${CMAKE_CURRENT_SOURCE_DIR} ${_cu})
target_compile_options(its_cuda PRIVATE ${ITS_C_WARNINGS})
target_link_libraries(its_cuda PRIVATE its_engine_cudak)
set_target_properties(its_cuda PROPERTIES PREFIX "" OUTPUT_NAME its_cuda
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib C_VISIBILITY_PRESET hidden)

list(APPEND ITS_ENGINE_BACKEND_MODULES cuda)
file(STRINGS ${_cu}/host_symbols.txt _syms REGEX "^[a-z_0-9]+$")
list(APPEND ITS_ENGINE_HOST_SYMBOLS ${_syms})
