#!/bin/sh
# Installs the C library: libptgrm.so (soname libptgrm.so.MAJOR), libptgrm.a, include/ptgrm.h and
# ptgrm.pc, so that `cc app.c $(pkg-config --cflags --libs ptgrm)` works.
#
#   scripts/install.sh [--prefix DIR] [--libdir DIR] [--destdir DIR] [--debug] [--no-build]
#                      [--with-onnxruntime]
#
#   --prefix DIR         install root (default /usr/local); header in DIR/include
#   --libdir DIR         library directory (default PREFIX/lib); ptgrm.pc goes to LIBDIR/pkgconfig
#   --destdir DIR        stage under DIR (packaging); paths inside ptgrm.pc stay PREFIX-based
#   --debug              install the debug build instead of the release build
#   --no-build           install what is already built (cargo build [--release] -p ptgrm-capi)
#   --with-onnxruntime   also copy the ONNX Runtime library that scripts/setup.sh recorded
#                        (.deps/ort.path) into LIBDIR, so it is found without the source tree
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
libdir=
destdir=
profile=release
build=1
with_ort=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --libdir) libdir=$2; shift 2 ;;
        --destdir) destdir=$2; shift 2 ;;
        --debug) profile=debug; shift ;;
        --no-build) build=0; shift ;;
        --with-onnxruntime) with_ort=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
libdir=${libdir:-$prefix/lib}
includedir=$prefix/include

cd "$root"
if [ "$build" = 1 ]; then
    if [ "$profile" = release ]; then cargo build --release -p ptgrm-capi; else cargo build -p ptgrm-capi; fi
fi
target=${CARGO_TARGET_DIR:-$root/target}/$profile
for f in libptgrm.so libptgrm.a; do
    [ -f "$target/$f" ] || { echo "install.sh: $target/$f is missing; build it first or drop --no-build" >&2; exit 1; }
done

version=$(cargo pkgid -p ptgrm-capi | sed 's/.*[#@]//')
soname=$(readelf -d "$target/libptgrm.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ -n "$soname" ] || { echo "install.sh: $target/libptgrm.so has no soname (is capi/build.rs gone?)" >&2; exit 1; }
# Native libraries a program linking libptgrm.a statically also needs (Rust std's dependencies).
native_static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

dest_lib=$destdir$libdir
install -d "$dest_lib/pkgconfig" "$destdir$includedir"
install -m 0755 "$target/libptgrm.so" "$dest_lib/libptgrm.so.$version"
ln -sf "libptgrm.so.$version" "$dest_lib/$soname"
ln -sf "$soname" "$dest_lib/libptgrm.so"
install -m 0644 "$target/libptgrm.a" "$dest_lib/libptgrm.a"
install -m 0644 include/ptgrm.h "$destdir$includedir/ptgrm.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$includedir|" \
    -e "s|@VERSION@|$version|" -e "s|@NATIVE_STATIC_LIBS@|$native_static_libs|" \
    ptgrm.pc.in > "$dest_lib/pkgconfig/ptgrm.pc"

if [ "$with_ort" = 1 ]; then
    ort=$(cat .deps/ort.path 2>/dev/null || true)
    [ -f "$ort" ] || { echo "install.sh: no ONNX Runtime recorded in .deps/ort.path (run scripts/setup.sh)" >&2; exit 1; }
    # Copy the real file under its soname (libonnxruntime.so.1), the name libptgrm looks for.
    install -m 0755 "$(readlink -f "$ort")" "$dest_lib/libonnxruntime.so.1"
fi

# Refresh the loader cache when installing for real into a directory it searches.
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null &&
    ldconfig -v -N 2>/dev/null | grep -q "^$libdir:"; then
    ldconfig
fi
echo "installed libptgrm $version ($soname) to $destdir$prefix"
echo "  compile: cc app.c \$(pkg-config --cflags --libs ptgrm)  (PKG_CONFIG_PATH=$libdir/pkgconfig if not standard)"
