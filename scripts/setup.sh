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
# The ONNX Runtime reference used by the parity tests and the benchmark peer.
if [ -f "$here/../tests/ref/package.json" ] && [ ! -d "$here/../tests/ref/node_modules/onnxruntime-node" ]; then
    (cd "$here/../tests/ref" && npm install --no-audit --no-fund --silent) || echo "setup: onnxruntime-node not installed; parity tests will skip" >&2
fi
echo "setup: all packages present"
