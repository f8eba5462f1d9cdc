#!/usr/bin/env bash
# Prepare the folder that the GPU machine receives (run here, on the dev machine):
#   bench/gpu/stage.sh DEST        (DEST: an ignored folder of the checkout the device tool sends)
# It builds the GPU binaries here (Release, sm_90 + PTX), and packs them with the non-system
# shared libraries they need (the GPU machine lacks our Debian libraries), the models, a few
# photos and this branch's sources into DEST/stage.tar.xz. On the GPU machine:
#   bash DEST/run.sh        (run.sh unpacks, checks and times; see run.sh)
set -euo pipefail
dest=${1:?usage: stage.sh DEST}
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${ITS_SHARED_DIR:-$root/../shared}
[ -d "$shared/models" ] || shared=/work/shared
build=${BUILD_DIR:-$root/build-gpu}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DITS_WERROR=ON -DITS_CUDA=ON >/dev/null
make -C "$build" -j2 >/dev/null
tmp=$(mktemp -d)
mkdir -p "$tmp/s/bin" "$tmp/s/lib" "$tmp/s/shared/models" "$tmp/s/shared/media"
for t in $(find "$build/tests/cuda" "$build/bench" "$build/tools" -maxdepth 2 -type f -executable \
           \( -name 'test_cuda*' -o -name 'bench_cuda' \) 2>/dev/null); do
    cp "$t" "$tmp/s/bin/"
done
# the cuda backend module, beside the binaries (where the engine looks for it first), and
# itsd for the start benchmark (bench/gpu/start.sh)
cp "$build/lib/its_cuda.so" "$build/tools/itsd/itsd" "$tmp/s/bin/"
# the Debian libraries the binaries need that an Ubuntu CUDA image lacks
. "$root/bench/gpu/pack.sh"
its_pack_libs "$tmp/s"
for m in yolo11n-fp32-dequant yolov8n-int8-qdq; do
    mkdir -p "$tmp/s/shared/models/$m"
    cp "$shared/models/$m"/*.onnx "$shared/models/$m"/expected_detections.json "$tmp/s/shared/models/$m/"
done
cp "$shared"/media/{bus,zidane,street_nyc_bus_lane,person}.jpg "$tmp/s/shared/media/"
# a real 720p camera frame for the NV12 letterbox test (test_cuda_prepost)
cp "$shared"/media/traffic_highway_overpass_720p.mp4 "$tmp/s/shared/media/"
git -C "$root" archive --format=tar --prefix=src/ HEAD | tar -x -C "$tmp/s"
for f in bench/gpu/*.py bench/gpu/*.sh; do cp "$root/$f" "$tmp/s/src/$f"; done  # uncommitted edits too
mkdir -p "$dest"
rm -f "$dest"/stage.tar.xz
tar -C "$tmp/s" -cJf "$dest/stage.tar.xz" .
cp "$root/bench/gpu/run.sh" "$dest/run.sh"
rm -rf "$tmp"
du -sh "$dest"/*
