# The CPU backend: oneDNN (Debian libdnnl-dev, C API dnnl.h) for convolutions, our kernels
# for the rest. Included by src/engine/CMakeLists.txt.
find_library(ITS_DNNL_LIB dnnl REQUIRED)
find_path(ITS_DNNL_INCLUDE dnnl.h REQUIRED)
list(APPEND ITS_ENGINE_BACKENDS cpu)
list(APPEND ITS_ENGINE_BACKEND_SOURCES ${CMAKE_CURRENT_LIST_DIR}/cpu_backend.c)
list(APPEND ITS_ENGINE_BACKEND_LIBS ${ITS_DNNL_LIB})
