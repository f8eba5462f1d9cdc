#!/usr/bin/env bash
# Install every Debian package the build, the tests and the demo need.
# Non-interactive and idempotent; the list lives in scripts/packages.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
pkgs=$(grep -v -E '^\s*(#|$)' "$here/packages.txt" | tr '\n' ' ')
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Debian's nodejs ships npm separately; NodeSource's bundles it (and conflicts with it).
if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq --no-install-recommends npm
fi
# The ONNX Runtime reference used by the parity tests and the benchmark peer: onnxruntime-node
# from the npm registry at the version pinned in tests/ref/package-lock.json. Its postinstall
# would fetch the CUDA provider binaries from outside the npm registry;
# ONNXRUNTIME_NODE_INSTALL=skip is the package's documented switch that skips that download
# (the CPU runtime is bundled in the package). The install is checked by loading the module,
# so a half-installed folder from an interrupted run is replaced.
ref="$here/../tests/ref"
ref_ok() { (cd "$ref" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); }
if [ -f "$ref/package.json" ] && ! ref_ok; then
    (cd "$ref" && rm -rf node_modules &&
        ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
    if ! ref_ok; then
        echo "setup: onnxruntime-node (tests/ref) did not install; the parity tests need it" >&2
        exit 1
    fi
fi
echo "setup: all packages present"
