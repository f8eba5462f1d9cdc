# Sourced by the stage scripts (stage.sh, demo-stage.sh, stress.sh stage): packing binaries
# built here for the GPU machine (Ubuntu with the NVIDIA driver, CUDA, cuDNN and cuBLAS, but
# none of our Debian libraries).
#
#   its_pack_libs DIR   copies into DIR/lib every shared library that the files in DIR/bin
#                       need and that the GPU machine lacks, then replaces the large ones that
#                       nothing we run calls into by stubs (its_pack_stub).
#
# What travels to the GPU machine is limited to 64 MiB. FFmpeg's Debian build links encoders
# and formats we never use (AV1, HEVC and VP8/9 encoders, JPEG XL, SVG, a speech codec) and,
# through libxml2, ICU's 31 MB data library; together they are most of the packed size. Each
# is replaced by a library of the same soname that defines the symbols the other libraries
# import (they are bound at load time): functions that abort if ever called, data of the
# same size, zero-filled. x264 stays (its-infer --draw encodes H.264), oneDNN stays (the CPU
# engine runs on the GPU machine too).

its_pack_stubs="libcodec2.so.1.0 libx265.so.199 libSvtAv1Enc.so.1 libaom.so.3 librav1e.so.0
libvpx.so.7 libjxl.so.0.7 librsvg-2.so.2 libicudata.so.72"

its_pack_libs() {
    local dir=$1 l
    mkdir -p "$dir/lib"
    for b in "$dir"/bin/*; do
        ldd "$b" | awk '/=> \//{print $3}' |
            grep -vE 'libc\.so|libm\.so|libdl\.so|librt\.so|libpthread|libstdc\+\+|libgcc_s|ld-linux|libcudnn|libcublas|libcudart|libnvidia|libcuda\.so' || true
    done | sort -u | while read -r l; do cp -L "$l" "$dir/lib/"; done
    for l in $its_pack_stubs; do
        [ -f "$dir/lib/$l" ] && its_pack_stub "$dir" "$l"
    done
    return 0
}

# its_pack_stub DIR SONAME: DIR/lib/SONAME becomes a stub exporting what DIR's other files
# import from it.
its_pack_stub() {
    local dir=$1 so=$2 t
    t=$(mktemp -d)
    # name, type, size, version node (- when unversioned)
    nm -D -S -t d --defined-only "$dir/lib/$so" |
        awk 'NF == 4 {print $4, $3, $2} NF == 3 {print $3, $2, 0}' |
        awk '{ v = "-"; n = $1; i = index(n, "@"); if (i) { v = substr(n, i); n = substr(n, 1, i - 1);
               gsub(/@/, "", v) } print n, $2, $3, v }' | sort -u -k1,1 >"$t/defs"
    for l in "$dir"/lib/* "$dir"/bin/*; do
        [ "$(basename "$l")" = "$so" ] || nm -D --undefined-only "$l" 2>/dev/null
    done | awk '{print $2}' | sed 's/@.*//' | sort -u >"$t/undef"
    join "$t/undef" "$t/defs" >"$t/used"
    awk 'BEGIN { print "#include <stdlib.h>" }
        $2 ~ /^[TWi]$/ { print "void " $1 "(void); void " $1 "(void) { abort(); }"; next }
        $2 ~ /^[DdRrBbVG]$/ { n = $3 + 0; if (n < 1) n = 1;
                              print "char " $1 "[" n "] __attribute__((aligned(16)));" }' "$t/used" >"$t/stub.c"
    # the library's version nodes, so that versioned references (sym@NODE) bind
    awk '$4 != "-" { s[$4] = s[$4] " " $1 ";" } END { for (v in s) print v " {" s[v] " };" }' \
        "$t/defs" | grep -v '{ *}' >"$t/ver" || true
    local vs=
    [ -s "$t/ver" ] && vs="-Wl,--version-script=$t/ver"
    awk '$4 != "-" {print $1}' "$t/defs" | sort -u >"$t/versioned"
    # version nodes list only symbols the stub defines
    if [ -s "$t/ver" ]; then
        awk '{print $1}' "$t/used" | sort -u >"$t/defined"
        awk 'NR == FNR { d[$1] = 1; next } $4 != "-" && ($1 in d) { s[$4] = s[$4] " " $1 ";" }
             END { for (v in s) print v " {" s[v] " };" }' "$t/defined" "$t/defs" >"$t/ver"
        [ -s "$t/ver" ] || vs=
    fi
    cc -shared -fPIC -o "$dir/lib/$so" -Wl,-soname,"$so" $vs "$t/stub.c"
    rm -rf "$t"
}
