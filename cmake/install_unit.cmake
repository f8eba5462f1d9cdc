# Install-time step (install(SCRIPT)): the systemd unit with ExecStart/ExecStartPre naming the
# installed itsd (the source unit names /usr/bin/itsd, the package's path), and the example
# configuration as /etc/its/itsd.yaml unless one is there already (then as itsd.yaml.new, so
# that a reinstall never overwrites an operator's file). ITS_UNIT_SRC, ITS_CONFIG_SRC,
# ITS_UNIT_TMP and ITS_BINDIR are set by install(CODE) before this runs.
file(READ "${ITS_UNIT_SRC}" unit)
string(REPLACE "/usr/bin/itsd" "${CMAKE_INSTALL_PREFIX}/${ITS_BINDIR}/itsd" unit "${unit}")
file(WRITE "${ITS_UNIT_TMP}/itsd.service" "${unit}")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     FILES "${ITS_UNIT_TMP}/itsd.service")
if(EXISTS "$ENV{DESTDIR}/etc/its/itsd.yaml")
    file(INSTALL DESTINATION "/etc/its" TYPE FILE FILES "${ITS_CONFIG_SRC}" RENAME itsd.yaml.new)
else()
    file(INSTALL DESTINATION "/etc/its" TYPE FILE FILES "${ITS_CONFIG_SRC}")
endif()
