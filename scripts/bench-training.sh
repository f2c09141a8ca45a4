#!/usr/bin/env bash
# Training speed, every backend side by side on the same machine state: `train bench` on the
# live low-light recipe (batch 8, 256x256 crops), the full-resolution one (batch 8, 64x64) and
# the FFDNet denoise recipe (external frozen F), with the original sampler (view_reuse 1) and
# the view pool. Prints a markdown table (docs/training.md, Benchmark). Pause long trainings
# first (kill -STOP PID) so the numbers are a quiet machine's.
#   scripts/bench-training.sh [STEPS]        (default 20 measured steps per cell)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-20}
TRAIN=${TRAIN:-target/release/train}
[ -x "$TRAIN" ] || cargo build -q --release -p ptgrm-train
[ -f .deps/priors/mobilenet_v2.onnx ] && [ -f .deps/bases/ffdnet_color_s25.onnx ] || {
  echo "bench-training: import the prior and FFDNet first (scripts/train-models.sh does)" >&2; exit 2; }

echo "| recipe | backend | view_reuse | data ms | prior ms | frozen F ms | step ms | steps/s |"
echo "|---|---|---|---|---|---|---|---|"
cell() {  # recipe backend reuse
  local out
  out=$("$TRAIN" bench --recipe "recipes/$1.toml" --steps "$STEPS" --backend "$2" --view-reuse "$3")
  # "per step: producer thread data X ms, prior Y ms, frozen F Z ms | trainer forward+backward+Adam W ms"
  local nums; nums=$(printf '%s\n' "$out" | sed -n 's/^per step: producer thread data \(.*\) ms, prior \(.*\) ms, frozen F \(.*\) ms | trainer forward+backward+Adam \(.*\) ms$/\1 | \2 | \3 | \4/p')
  echo "| $1 | $2 | $3 | $nums | $(printf '%s\n' "$out" | tail -n1 | cut -d' ' -f2) |"
}
for recipe in lowlight-live-s8 lowlight; do
  for backend in flex tch; do
    for reuse in 1 8; do cell "$recipe" "$backend" "$reuse"; done
  done
done
for backend in flex tch; do
  for reuse in 1 8 32; do cell denoise-s25 "$backend" "$reuse"; done
done
