#!/usr/bin/env bash
# Makes a live bundle faster on CPUs: int8 weights and activations for the deep levels of its F
# (everything below the first U-Net level), static QDQ that ONNX Runtime fuses into int8
# convolutions; the first level, the cell head, R and the prior stay float.
#
#   scripts/quantize-bundle.sh BUNDLE RUN_DIR [OUT]     (OUT defaults to BUNDLE, replaced)
#
# RUN_DIR is the run BUNDLE was exported from: its recipe degrades the training photos (data.train,
# through `train eval --full --save-images`, as scripts/val-split.sh does for validation) and the
# bundle's own prior graph gives each calibration crop its g, so the activation ranges are those
# of training inputs; validation photos are never used. The Python side (ONNX Runtime's
# quantization tool, the same release as the runtime library) lives in .deps/quant-venv.
#
# Why (docs/results-live.md, "Int8 deep levels"): measured on 2 cores, engine fps at
# 640x360, denoise-live 24.3 -> 34.0 and lowlight 47.4 -> 57.2, for -0.05 dB (denoiser, sigma 25)
# and within 0.01 dB (low light) on the validation photos; quantizing every convolution as well
# cost the denoiser 0.37 dB.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
BUNDLE=${1%/} RUN=${2%/} OUT=${3:-${1%/}}
TRAIN=${TRAIN:-target/release/train}
[ -f "$BUNDLE/manifest.json" ] || { echo "quantize-bundle: $BUNDLE is not a bundle (no manifest.json)" >&2; exit 1; }
[ -f "$RUN/recipe.toml" ] || { echo "quantize-bundle: $RUN is not a run (no recipe.toml)" >&2; exit 1; }
if grep -q 'deep-level convolutions int8' "$BUNDLE/manifest.json"; then
  echo "quantize-bundle: $BUNDLE is already quantized (its manifest note says so); quantize a fresh \`train export\`" >&2
  exit 1
fi

VENV=.deps/quant-venv
ORT_VERSION=$(sed -n 's/^ORT_VERSION=//p' scripts/setup.sh)
if ! "$VENV/bin/python" -c "import onnxruntime, onnx, PIL, numpy" 2>/dev/null; then
  python3 -m venv "$VENV" || { echo "quantize-bundle: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet "onnxruntime==$ORT_VERSION" "onnx==1.23.2" "numpy==2.4.6" "pillow==13.0.0"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The training photos degraded by the run's recipe (written by the trainer, seeded).
train_dirs=$(sed -n 's/^train = //p' "$RUN/recipe.toml")
scripts/val-split.sh "$RUN" "$work/calibration" "s|^val = .*|val = $train_dirs|"
# Where quantizing a shipped bundle in place, keep what reproduces it.
command="scripts/quantize-bundle.sh $OUT $RUN"
"$VENV/bin/python" scripts/quantize_bundle.py "$BUNDLE" "$work/calibration/degraded" "$work/out" "$command"
rm -rf "$OUT" && mv "$work/out" "$OUT"
echo "quantize-bundle: wrote $OUT"
