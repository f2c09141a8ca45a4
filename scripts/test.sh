#!/usr/bin/env bash
# Sets up everything (idempotent) and runs every test of the workspace, including the
# trainer's and the GPU-provider fallback test. This is the README's test command and what
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --gpu-libs
bash scripts/fetch-weights.sh >/dev/null
if [ -f scripts/fetch-data.sh ]; then bash scripts/fetch-data.sh >/dev/null; fi
# The code's layout is rustfmt's (rustfmt.toml); a change that is not formatted fails here first.
# (A toolchain without the rustfmt component, which cannot be fetched offline, skips it and says so.)
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check || { echo "scripts/test.sh: run 'cargo fmt --all' (the diff above is what it would change)" >&2; exit 1; }
else
  echo "scripts/test.sh: rustfmt is not installed; the formatting check is skipped" >&2
fi
export PTGRM_REQUIRE_IMPORT_ASSETS=1
export PTGRM_ORT_GPU_DYLIB="$(pwd)/.deps/onnxruntime-gpu/lib/libonnxruntime.so.1"
# cargo test links no cdylib: the C library and the GStreamer plugin that the C example and
# gst-inspect tests load must be built first.
cargo build -p ptgrm-capi -p gst-plugin-ptgrestore
cargo test --workspace --all-targets --no-fail-fast "$@"
