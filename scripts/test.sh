#!/usr/bin/env bash
# Sets up everything (idempotent) and runs every test of the workspace, including the
# trainer's and the GPU-provider fallback test. This is the README's test command and what
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --gpu-libs
bash scripts/fetch-weights.sh >/dev/null
if [ -f scripts/fetch-data.sh ]; then bash scripts/fetch-data.sh >/dev/null; fi
export PTGRM_REQUIRE_IMPORT_ASSETS=1
export PTGRM_ORT_GPU_DYLIB="$(pwd)/.deps/onnxruntime-gpu/lib/libonnxruntime.so.1"
# cargo test links no cdylib: the C library and the GStreamer plugin that the C example and
# gst-inspect tests load must be built first.
cargo build -p ptgrm-capi -p gst-plugin-ptgrestore
cargo test --workspace --all-targets --no-fail-fast "$@"
