# The cuda backend, included by src/engine/CMakeLists.txt: fp16 NHWC inference on cuDNN 9
# and cuBLAS plus our kernels, GPU pre/post-processing, CUDA graphs. Built when ITS_CUDA is on
# (the default wherever the CUDA toolkit is found); sm_90 machine code plus compute_90 PTX, so
# CI compiles it without a GPU. The kernels are a separate static library (its_engine_cudak,
# CUDA C++ behind extern "C" launchers); the backend itself is C, compiled into its_engine.
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
add_library(its_engine_cudak STATIC ${_cu}/cuda_check.c ${_cu}/prepost.cu ${_cu}/kernels.cu)
target_include_directories(its_engine_cudak PUBLIC ${ITS_ROOT}/include ${CUDNN_INCLUDE_DIR}
                           PRIVATE ${_cu})
target_link_libraries(its_engine_cudak PUBLIC its_core CUDA::cudart_static CUDA::cublas
                      ${CUDNN_LIBRARY} stdc++)
target_compile_options(its_engine_cudak PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter --Werror=all-warnings -lineinfo>)
set_target_properties(its_engine_cudak PROPERTIES POSITION_INDEPENDENT_CODE ON)

list(APPEND ITS_ENGINE_BACKENDS cuda)
list(APPEND ITS_ENGINE_BACKEND_SOURCES ${_cu}/cuda_backend.c ${_cu}/cuda_frames.c ${_cu}/cudnn_fused.c)
list(APPEND ITS_ENGINE_BACKEND_LIBS its_engine_cudak)
