#!/usr/bin/env bash
# Packs what scripts/gpu-train.sh needs on a lent GPU machine into .gpu/ (gitignored through
# .git/info/exclude; the device tool carries it: `carry: [".gpu"]`, 64 MiB with the tree).
# Runs HERE, after scripts/setup.sh, fetch-weights.sh and fetch-data.sh:
#
#   scripts/gpu-pack.sh CHECKPOINT...     # checkpoints named by the recipes' init_from
#
# The GPU machine has PyTorch 2.11 (CUDA 13) and no Rust. The trainer is therefore built here
# against the headers of the same PyTorch (PyPI wheel, no CUDA libraries needed to build),
# linked to libtorch_cpu only; gpu-train.sh preloads that machine's libtorch_cuda. A trainer
# built against our CPU LibTorch 2.9 loads there but crashes at the first tensor (the inline
# TensorImpl accessors differ between versions), hence the second build.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${TORCH:-2.11.0}
work=${GPU_WORK:-.deps/gpu}
pack=.gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p "$work" "$pack"

# 1. PyTorch $TORCH's headers and CPU libraries (the wheel is 530 MB; only include/ and the
#    CPU libraries are kept). Its libtorch_cpu needs libcudart/libcupti 13 to load, which the
#    CPU check below takes from two small PyPI wheels.
lt=$work/libtorch-$TORCH
if [ ! -e "$lt/lib/libtorch_cpu.so" ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "torch==$TORCH"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "nvidia-cuda-runtime>=13,<14" "nvidia-cuda-cupti>=13,<14"
    rm -rf "$lt" && mkdir -p "$lt"
    unzip -q -o "$work"/torch-"$TORCH"-*.whl 'torch/include/*' 'torch/lib/libc10.so' 'torch/lib/libtorch.so' \
        'torch/lib/libtorch_cpu.so' 'torch/lib/libgomp.so.1' 'torch/lib/libshm.so' -d "$lt/wheel"
    mv "$lt/wheel/torch/include" "$lt/include" && mv "$lt/wheel/torch/lib" "$lt/lib" && rm -rf "$lt/wheel"
    for w in "$work"/nvidia_cuda_*.whl; do unzip -q -o "$w" -d "$work/cuda"; done
    rm -f "$work"/torch-"$TORCH"-*.whl
fi

# 2. The trainer against it (own target directory: the CPU build stays as it is).
LIBTORCH=$PWD/$lt LIBTORCH_BYPASS_VERSION_CHECK=1 CARGO_TARGET_DIR=$work/target \
    cargo build --release -p ptgrm-train
# It must train on a CPU with that library before it travels (same losses as the CPU build).
LD_LIBRARY_PATH=$PWD/$lt/lib:$PWD/$work/cuda/nvidia/cu13/lib "$work/target/release/train" \
    bench --recipe recipes/denoise-s25-nearclip.toml --steps 2 --warmup 1 > /dev/null
strip -o "$work/train" "$work/target/release/train"
xz -T2 -6 -c "$work/train" > "$pack/train.xz"
xz -T2 -6 -c "$(readlink -f .deps/onnxruntime/lib/libonnxruntime.so.1)" > "$pack/libonnxruntime.so.xz"

# 3. Frozen graphs, photos (downscaled to the recipes' max_side = 1024, where they would be
#    anyway, so that they fit), and the start checkpoints' parameters (Adam moments dropped:
#    train.init_from reads parameters only).
mkdir -p "$pack/priors" "$pack/bases" "$pack/checkpoints"
cp .deps/priors/mobilenet_v2.onnx "$pack/priors/"
cp .deps/bases/ffdnet_color_s25.onnx "$pack/bases/"
python3 scripts/gpu_pack_data.py data "$pack/data" 1024
for c in "$@"; do
    mkdir -p "$pack/checkpoints/$(basename "$c")"
    python3 scripts/gpu_pack_data.py --params-only "$c/checkpoint.bin" "$pack/checkpoints/$(basename "$c")/checkpoint.bin"
done
du -sh "$pack"
