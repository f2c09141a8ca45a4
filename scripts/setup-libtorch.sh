#!/usr/bin/env bash
# Installs a CPU-only LibTorch for the trainer's default backend (tch) into .deps/libtorch,
# taken from registry wheels (no other host): the PyPI `torch` wheel's CPU libraries and C++
# headers, plus the two small CUDA runtime libraries that libtorch_cpu.so links against for its
# profiler (libcudart, libcupti; never used on a CPU, but the loader needs them present).
#
# The PyPI wheel's libtorch.so also links libtorch_cuda.so (470 MB, plus 4 GB of CUDA wheels);
# a CPU LibTorch's libtorch.so is only a shim over libtorch_cpu.so, so one is built here the
# same way. Result: ~0.5 GB instead of ~5 GB, and the same kernels on CPU.
#
# Idempotent (skips when .deps/libtorch/build-version matches). Needs: pip, unzip, gcc.
# Usage: scripts/setup-libtorch.sh [DEST]     (DEST defaults to .deps/libtorch)
set -euo pipefail
cd "$(dirname "$0")/.."
# tch 0.22 (the version burn 0.22's optional LibTorch backend also pins: two torch-sys versions
# cannot share a build, as both link the native library `tch`) expects PyTorch 2.9.0, whose
# wheel is built against the CUDA 12.8 runtime.
TORCH_VERSION=2.9.0
CUDA_WHEELS=("nvidia-cuda-runtime-cu12==12.8.90" "nvidia-cuda-cupti-cu12==12.8.90")
CUDA_MAJOR=12
DEST=${1:-"$(pwd)/.deps/libtorch"}

if [ -f "$DEST/build-version" ] && [ "$(cat "$DEST/build-version")" = "$TORCH_VERSION" ] \
   && [ -f "$DEST/lib/libtorch_cpu.so" ]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup-libtorch: downloading torch $TORCH_VERSION (CPU parts are kept)"
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  "torch==$TORCH_VERSION" "${CUDA_WHEELS[@]}" -d "$tmp"

rm -rf "$DEST.partial"
mkdir -p "$DEST.partial/lib"
(cd "$tmp" && unzip -q -o torch-"$TORCH_VERSION"-*.whl 'torch/include/*' 'torch/lib/libtorch_cpu.so' \
  'torch/lib/libc10.so' 'torch/lib/libgomp*')
(cd "$tmp" && unzip -q -o torch-"$TORCH_VERSION"-*.whl '*.dist-info/*LICENSE*' '*.dist-info/*NOTICE*' || true) >/dev/null 2>&1
mv "$tmp/torch/include" "$DEST.partial/include"
cp -a "$tmp"/torch/lib/libtorch_cpu.so "$tmp"/torch/lib/libc10.so "$tmp"/torch/lib/libgomp* "$DEST.partial/lib/"
for whl in "$tmp"/nvidia_cuda_runtime*.whl "$tmp"/nvidia_cuda_cupti*.whl; do
  (cd "$tmp" && unzip -q -o "$whl" "nvidia/*/lib/libcudart.so.$CUDA_MAJOR*" "nvidia/*/lib/libcupti.so.$CUDA_MAJOR*" 2>/dev/null || true)
done
find "$tmp/nvidia" -name "libcudart.so.$CUDA_MAJOR*" -o -name "libcupti.so.$CUDA_MAJOR*" | while read -r f; do
  cp -a "$f" "$DEST.partial/lib/"
done
for need in "libcudart.so.$CUDA_MAJOR" "libcupti.so.$CUDA_MAJOR"; do
  [ -e "$DEST.partial/lib/$need" ] || ln -sf "$(cd "$DEST.partial/lib" && ls ${need}* | head -n1)" "$DEST.partial/lib/$need"
done
# Licences travel with the binaries.
mkdir -p "$DEST.partial/licenses"
find "$tmp" -path '*dist-info*' \( -iname 'LICENSE*' -o -iname 'NOTICE*' \) -exec cp {} "$DEST.partial/licenses/" \; 2>/dev/null || true

# The CPU shim: libtorch.so = libtorch_cpu.so's symbols, as in CPU LibTorch builds.
echo 'void ptgrm_libtorch_cpu_shim(void) {}' > "$tmp/shim.c"
gcc -shared -fPIC -o "$DEST.partial/lib/libtorch.so" "$tmp/shim.c" \
  -Wl,--no-as-needed -L"$DEST.partial/lib" -ltorch_cpu -Wl,-rpath,'$ORIGIN'
echo "$TORCH_VERSION" > "$DEST.partial/build-version"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
echo "setup-libtorch: LibTorch $TORCH_VERSION (CPU) in $DEST ($(du -sh "$DEST" | cut -f1))"
