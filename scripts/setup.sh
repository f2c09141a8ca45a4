#!/usr/bin/env bash
# Installs everything ptgrm needs on Debian 12 (as root, idempotent, offline except for the
# Debian, PyPI and crates.io registries) and builds the workspace.
#   - GStreamer 1.22 dev packages and tools, valgrind, pkg-config (apt)
#   - ONNX Runtime 1.31.1 CPU library from the PyPI wheel into .deps/onnxruntime (path recorded
#     in .deps/ort.path, which the build bakes in as the default library location)
#   - with --gpu-libs: the onnxruntime-gpu wheel's providers into .deps/onnxruntime-gpu
#     (used by the fallback test; needs no GPU)
#   - LibTorch (CPU, ~0.5 GB) for the trainer's default backend into .deps/libtorch
#     (scripts/setup-libtorch.sh); --runtime-only skips it (element, C library and CLI only)
# Usage: scripts/setup.sh [--gpu-libs] [--runtime-only]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ORT_VERSION=1.31.1
GPU_LIBS=0
RUNTIME_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --gpu-libs) GPU_LIBS=1 ;;
    --runtime-only) RUNTIME_ONLY=1 ;;
    *) echo "setup: unknown option $arg (expected --gpu-libs, --runtime-only)" >&2; exit 2 ;;
  esac
done
DEPS="$ROOT/.deps"
mkdir -p "$DEPS"

APT_PACKAGES=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
  valgrind pkg-config unzip build-essential binutils)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Unpacks libonnxruntime*.so* from a PyPI wheel into $2/lib.
fetch_wheel() {
  local pkg=$1 dest=$2
  if [ -f "$dest/lib/libonnxruntime.so.$ORT_VERSION" ]; then return; fi
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps "$pkg==$ORT_VERSION" -d "$tmp"
  mkdir -p "$dest/lib"
  (cd "$tmp" && unzip -q -o ./*.whl 'onnxruntime/capi/libonnxruntime*.so*')
  cp "$tmp"/onnxruntime/capi/libonnxruntime*.so* "$dest/lib/"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/lib/libonnxruntime.so.1"
  rm -rf "$tmp"
}
fetch_wheel onnxruntime "$DEPS/onnxruntime"
echo "$DEPS/onnxruntime/lib/libonnxruntime.so.1" > "$DEPS/ort.path"
if [ "$GPU_LIBS" = 1 ]; then
  fetch_wheel onnxruntime-gpu "$DEPS/onnxruntime-gpu"
fi
echo "setup: ONNX Runtime $ORT_VERSION at $(cat "$DEPS/ort.path")"
if [ "$RUNTIME_ONLY" = 0 ]; then
  bash "$ROOT/scripts/setup-libtorch.sh" "$DEPS/libtorch"
  echo "setup: LibTorch $(cat "$DEPS/libtorch/build-version") (CPU) at $DEPS/libtorch"
fi
