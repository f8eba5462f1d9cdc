# Project-wide flags and the helpers every module uses:
#   its_add_module(name SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])  -> static target its_<name>
#   its_add_test(name SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [ARGS ...])
#   its_add_tool(name SOURCES ... [DEPS ...])
#   its_add_fuzz(name SOURCE file DEPS ... [CORPUS dir])
# Modules and tests are discovered from the folders that hold a CMakeLists.txt, so adding a
# module touches no shared file.

add_compile_definitions(_GNU_SOURCE)
set(ITS_C_WARNINGS -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wno-unused-parameter
    -Wmissing-prototypes -Wstrict-prototypes)
if(ITS_WERROR)
    list(APPEND ITS_C_WARNINGS -Werror)
endif()

set(ITS_SAN_FLAGS "")
if(ITS_ASAN)
    list(APPEND ITS_SAN_FLAGS -fsanitize=address -fno-omit-frame-pointer)
endif()
if(ITS_UBSAN)
    list(APPEND ITS_SAN_FLAGS -fsanitize=undefined -fno-sanitize-recover=undefined)
endif()
if(ITS_TSAN)
    list(APPEND ITS_SAN_FLAGS -fsanitize=thread)
endif()
if(ITS_SAN_FLAGS)
    foreach(flag ${ITS_SAN_FLAGS})
        add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:${flag}>)
    endforeach()
    add_link_options(${ITS_SAN_FLAGS})
endif()

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

set(ITS_ROOT ${CMAKE_SOURCE_DIR})
# Shared test data beside the checkout (models, media, docs), overridable.
set(ITS_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared" CACHE PATH "The shared/ folder with models and media")
set(ITS_ALL_MODULES "" CACHE INTERNAL "")

function(its_add_module name)
    cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
    add_library(its_${name} STATIC ${M_SOURCES})
    target_include_directories(its_${name} PUBLIC ${ITS_ROOT}/include
                               PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_compile_options(its_${name} PRIVATE $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>)
    target_link_libraries(its_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
    set_target_properties(its_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    set(ITS_ALL_MODULES ${ITS_ALL_MODULES} its_${name} CACHE INTERNAL "")
endfunction()

function(its_add_tool name)
    cmake_parse_arguments(T "" "" "SOURCES;DEPS" ${ARGN})
    add_executable(${name} ${T_SOURCES})
    target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>)
    target_link_libraries(${name} PRIVATE ${T_DEPS})
endfunction()

# Tests: cmocka executables, one ctest entry each. Exit code 77 means "skipped" (for GPU tests
# on machines without a GPU, or a missing optional reference).
function(its_add_test name)
    cmake_parse_arguments(T "" "TIMEOUT;WORKING_DIRECTORY" "SOURCES;DEPS;LABELS;ARGS;ENV" ${ARGN})
    add_executable(test_${name} ${T_SOURCES})
    target_compile_options(test_${name} PRIVATE $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>)
    target_include_directories(test_${name} PRIVATE ${ITS_ROOT}/tests/common)
    target_link_libraries(test_${name} PRIVATE ${T_DEPS} its_testutil)
    if(NOT T_WORKING_DIRECTORY)
        set(T_WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    endif()
    add_test(NAME ${name} COMMAND test_${name} ${T_ARGS} WORKING_DIRECTORY ${T_WORKING_DIRECTORY})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 300)
    endif()
    set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
        ENVIRONMENT "ITS_SHARED_DIR=${ITS_SHARED_DIR};ITS_SOURCE_DIR=${ITS_ROOT};ITS_BINARY_DIR=${CMAKE_BINARY_DIR};${T_ENV}")
    if(T_LABELS)
        set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
    endif()
endfunction()

# A fuzz target is a file defining LLVMFuzzerTestOneInput. With ITS_FUZZ (clang) it links
# libFuzzer; otherwise it links a small driver that replays a corpus, and ctest runs that
# over the checked-in seeds so every parser's fuzz entry point is exercised on every build.
function(its_add_fuzz name)
    cmake_parse_arguments(F "" "SOURCE;CORPUS" "DEPS" ${ARGN})
    if(ITS_FUZZ)
        add_executable(fuzz_${name} ${F_SOURCE})
        target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
        target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    else()
        add_executable(fuzz_${name} ${F_SOURCE} ${ITS_ROOT}/tests/fuzz/replay_main.c)
    endif()
    target_compile_options(fuzz_${name} PRIVATE $<$<COMPILE_LANGUAGE:C>:${ITS_C_WARNINGS}>)
    target_link_libraries(fuzz_${name} PRIVATE ${F_DEPS})
    if(F_CORPUS)
        if(ITS_FUZZ)
            # New inputs go to the first folder (in the build tree), seeds stay untouched.
            file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/corpus_${name})
            add_test(NAME fuzz_${name} COMMAND fuzz_${name} -max_total_time=20 -rss_limit_mb=2048
                     -timeout=10 ${CMAKE_CURRENT_BINARY_DIR}/corpus_${name} ${F_CORPUS})
        else()
            add_test(NAME fuzz_${name} COMMAND fuzz_${name} ${F_CORPUS})
        endif()
        set_tests_properties(fuzz_${name} PROPERTIES TIMEOUT 300 LABELS fuzz)
    endif()
endfunction()

# Add every immediate subfolder of `dir` that has a CMakeLists.txt, in sorted order.
function(its_add_subdirs)
    file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
    list(SORT children)
    foreach(child ${children})
        if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
            add_subdirectory(${child})
        endif()
    endforeach()
endfunction()
