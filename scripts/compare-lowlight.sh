#!/usr/bin/env bash
# Compares low-light bundles on identical inputs, through the runtime as users run them, and
# writes the tables to out/compare-lowlight/report.md (docs/results.md quotes them):
#   - four splits of the validation photos, made by `train eval --save-images` from RUN_DIR's
#     checkpoint with the degradation (and seed) swapped: "v1" (recipes/lowlight-live-s8.toml's:
#     exposure 3-30 %, 300-3000 photons; docs/results.md's inputs until v2), "wide" (RUN_DIR's own
#     recipe), "dark" (exposure 1-5 %, 50-300 photons: a camera at night) and "camera" (the wide
#     range through a colour filter array and 4:2:0 chroma, as a real camera delivers it);
#   - `ptgrm eval --baseline` (PSNR/SSIM of base, refined and the non-learned baseline, and the
#     refined output's blockiness: block-edge steps over other steps, photos ~1),
#     `ptgrm artefacts` (grid score, temporal noise, prior flicker) and `ptgrm bench` (CPU,
#     640x360 and 1280x720, one bundle after the other).
#
#   scripts/compare-lowlight.sh RUN_DIR BUNDLE...
#
# Example: scripts/compare-lowlight.sh checkpoints/lowlight-live-v2 models/lowlight-v1 models/lowlight
# Run it on a quiet machine (pause training: kill -STOP PID) when the speed figures matter.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,16p' "$0"; exit 2; }
RUN=$1; shift
TRAIN=${TRAIN:-target/release/train}
PTGRM=${PTGRM:-target/release/ptgrm}
OUT=out/compare-lowlight
mkdir -p "$OUT"
REPORT=$OUT/report.md

# split NAME SED-SCRIPT: the validation photos degraded as RUN's recipe, edited by SED-SCRIPT.
split() {
  grep -q '^kind = "low_light"' "$RUN/recipe.toml" || { echo "no low_light degradation in $RUN/recipe.toml" >&2; exit 1; }
  TRAIN=$TRAIN scripts/val-split.sh "$RUN" "$OUT/val-$1" "$2"
}

. scripts/lowlight-splits.sh
split v1 "s/^seed = .*/seed = 20240601/; $LOWLIGHT_V1"
split wide "$LOWLIGHT_WIDE"
split dark "$LOWLIGHT_DARK"
split camera "s/^seed = .*/seed = 20240602/; $LOWLIGHT_CAMERA"

{
  echo "Inputs: the five validation photos degraded from \`$RUN\`'s recipe (splits above); $(nproc) cores; $(date -u +%F)."
  echo
  printf '| bundle | split | input PSNR | base PSNR | refined PSNR | baseline PSNR | input SSIM | base SSIM | refined SSIM | baseline SSIM | refined blockiness |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n'
} > "$REPORT"
for m in "$@"; do
  for s in v1 wide dark camera; do
    "$PTGRM" eval --model "$m" --clean "$OUT/val-$s/clean" --degraded "$OUT/val-$s/degraded" --provider cpu --baseline --json \
      > "$OUT/$(basename "$m").$s.eval.json"
    python3 - "$OUT/$(basename "$m").$s.eval.json" "$m" "$s" >> "$REPORT" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["mean"]
k = ("input", "base", "refined", "baseline")
p = " | ".join(f"{m[x]['psnr']:.2f}" for x in k)
s = " | ".join(f"{m[x]['ssim']:.3f}" for x in k)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {p} | {s} | {m['refined']['blockiness']:.2f} |")
EOF
  done
done

{
  echo
  printf '| bundle | grid score (max, period) | grid amplitude, 8-bit levels (max, period) | fixed-pattern score, amplitude (max, period) | temporal noise ratio | prior flicker | fps 640x360 | fps 1280x720 |\n|---|---|---|---|---|---|---|---|\n'
} >> "$REPORT"
for m in "$@"; do
  PTGRM=$PTGRM scripts/artefacts-row.sh "$m" "$OUT/$(basename "$m")" 40 >> "$REPORT"
done
cat "$REPORT"
