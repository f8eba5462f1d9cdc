#!/usr/bin/env bash
# Prepare the demo for the GPU machine (run here, on the dev machine):
#   bench/gpu/demo-stage.sh DEST       (DEST: a folder of the checkout the device tool sends)
# Builds itsd with the CUDA backend (Release) and packs it with the shared libraries it needs
# that the GPU machine lacks (FFmpeg, oneDNN, hiredis, ...), YOLOX-Nano, the demo's three
# videos and this checkout's deploy/ into DEST/demo.tar.xz. On the GPU machine:
#   bash DEST/demo.sh                  (see bench/gpu/demo.sh)
set -euo pipefail
dest=${1:?usage: demo-stage.sh DEST}
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${ITS_SHARED_DIR:-$root/../shared}
[ -d "$shared/models" ] || shared=/work/shared
build=${BUILD_DIR:-$root/build-gpu}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DITS_WERROR=ON -DITS_CUDA=ON >/dev/null
cmake --build "$build" -j2 --target itsd its_cuda >/dev/null
tmp=$(mktemp -d)
mkdir -p "$tmp/s/bin" "$tmp/s/lib" "$tmp/s/shared/models/yolox-nano" "$tmp/s/shared/media"
cp "$build/tools/itsd/itsd" "$build/lib/its_cuda.so" "$tmp/s/bin/"
. "$root/bench/gpu/pack.sh"
its_pack_libs "$tmp/s"
cp "$shared/models/yolox-nano/yolox_nano.onnx" "$tmp/s/shared/models/yolox-nano/"
cp "$shared/media/coco.names" "$tmp/s/shared/media/"
for v in $(sed -n 's|.*url: .*/media/\(.*\.mp4\)|\1|p' "$root/deploy/itsd.yaml"); do
    cp "$shared/media/$v" "$tmp/s/shared/media/"
done
mkdir -p "$tmp/s/src"
git -C "$root" archive --format=tar HEAD deploy | tar -x -C "$tmp/s/src"
cp "$root/deploy/itsd.yaml" "$tmp/s/src/deploy/" # uncommitted edits too
mkdir -p "$dest"
rm -f "$dest/demo.tar.xz"
tar -C "$tmp/s" -cf - . | xz -T2 -9 >"$dest/demo.tar.xz"
cp "$root/bench/gpu/demo.sh" "$dest/demo.sh"
rm -rf "$tmp"
du -sh "$dest"/*
