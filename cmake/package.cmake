# Installation of everything but the tools (tools/CMakeLists.txt installs those, the cuda
# module and the man pages), and the Debian package:
#   cmake --install build                      # under CMAKE_INSTALL_PREFIX (/usr/local)
#   cd build && cpack                          # its-analytics_<version>_<arch>.deb, /usr
# Layout: bin/ the tools; lib/its-analytics/its_cuda.so; lib/systemd/system/itsd.service;
# lib/sysusers.d/its-analytics.conf; /etc/its/itsd.yaml (a conffile of the package);
# share/doc/its-analytics/ the README and the operator's docs; share/its-analytics/ the
# Prometheus rules, the Grafana dashboard, the Kubernetes example and the sample scenes.
# The package test (tests/deploy, label `package`) builds the .deb, unpacks it into a scratch
# root and runs the installed itsd on the installed configuration.
include(GNUInstallDirs)

install(CODE "set(ITS_UNIT_SRC \"${ITS_ROOT}/deploy/systemd/itsd.service\")
set(ITS_CONFIG_SRC \"${ITS_ROOT}/deploy/systemd/itsd.yaml\")
set(ITS_UNIT_TMP \"${CMAKE_BINARY_DIR}/install-tmp\")
set(ITS_BINDIR \"${CMAKE_INSTALL_BINDIR}\")")
install(SCRIPT ${ITS_ROOT}/cmake/install_unit.cmake)
install(FILES ${ITS_ROOT}/deploy/systemd/its-analytics.sysusers DESTINATION lib/sysusers.d
        RENAME its-analytics.conf)
install(FILES ${ITS_ROOT}/README.md ${ITS_ROOT}/docs/operations.md ${ITS_ROOT}/docs/service.md
              ${ITS_ROOT}/docs/messages.md ${ITS_ROOT}/docs/analytics.md ${ITS_ROOT}/docs/cli.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/its-analytics)
install(DIRECTORY ${ITS_ROOT}/docs/schema DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/its-analytics)
install(DIRECTORY ${ITS_ROOT}/deploy/prometheus ${ITS_ROOT}/deploy/grafana
                  ${ITS_ROOT}/deploy/kubernetes ${ITS_ROOT}/deploy/scenes
        DESTINATION ${CMAKE_INSTALL_DATADIR}/its-analytics)

set(ITS_PACKAGE_MAINTAINER "its-analytics maintainers" CACHE STRING
    "Maintainer field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME its-analytics)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "real-time traffic-camera analytics service (itsd)")
set(CPACK_PACKAGE_DESCRIPTION
    "itsd takes many camera streams, batches frames onto a GPU or the CPU, runs a YOLO-family\
 ONNX detector, tracks and counts vehicles, and publishes analytics to Redis and Prometheus.")
# /etc/its is an absolute destination: install into the staging root through DESTDIR, with
# the prefix /usr
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ITS_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Dependencies from the shared libraries the binaries link (dpkg-shlibdeps, dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(TARGET its_cuda)
    # the CUDA runtime libraries come with the NVIDIA driver and toolkit, not from Debian
    set(_dirs)
    foreach(lib ${CUDA_cublas_LIBRARY} ${CUDNN_LIBRARY}) # find_library's cache entries
        get_filename_component(_d ${lib} DIRECTORY)
        list(APPEND _dirs ${_d})
    endforeach()
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${_dirs})
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus")
# conffiles (the configuration survives upgrades) and the system user at install time
configure_file(${ITS_ROOT}/deploy/debian/conffiles ${CMAKE_BINARY_DIR}/debian/conffiles COPYONLY)
configure_file(${ITS_ROOT}/deploy/debian/postinst ${CMAKE_BINARY_DIR}/debian/postinst COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/debian/conffiles
    ${CMAKE_BINARY_DIR}/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
