#!/usr/bin/env bash
# Fails (listing the files) if any tracked C/CUDA source differs from clang-format's output.
set -u
cf=${1:-clang-format}
cd "$(git rev-parse --show-toplevel 2>/dev/null || pwd)"
files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null | grep -v '^third_party/')
[ -n "$files" ] || { echo "no files"; exit 0; }
bad=0
for f in $files; do
    [ -f "$f" ] || continue
    if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: clang-format -i $f)"
        bad=1
    fi
done
[ $bad = 0 ] && echo "format: all $(echo "$files" | wc -w) files formatted"
exit $bad
