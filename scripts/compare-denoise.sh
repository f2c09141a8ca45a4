#!/usr/bin/env bash
# Compares denoising bundles on identical inputs, through the runtime as users run them, and
# writes the tables to out/compare-denoise/report.md (docs/results-denoise.md quotes them):
#   - splits of the validation photos made by scripts/val-split.sh from RUN_DIR's checkpoint
#     (a gaussian_noise recipe) with the noise swapped: white Gaussian sigma 15, 25 and 50, and
#     "camera" (sigma 5 plus signal-dependent shot noise 0.002-0.01, 8 bits) and "camera-cfa"
#     (the same noise demosaiced from a colour filter array, chroma 4:2:0). A bundle named
#     denoise-sN (FFDNet with the noise level fixed) is scored on its own sigma only; blind
#     bundles on every split;
#   - `ptgrm eval --baseline` (PSNR/SSIM of input, base F, refined F + PTG-RM and the
#     non-learned baseline: the best of 10 bilateral filters per image by SSIM, after a
#     per-channel gain to the model's means, which is about 1 here; refined blockiness),
#     `ptgrm artefacts` on a bright noisy sensor (grid score, temporal noise ratio: output over
#     input standard deviation over 8 captures of a still scene; prior flicker) and
#     `ptgrm bench` (CPU, 640x360 and 1280x720);
#   - out/compare-denoise/grid.png: one window of kodim23 at sigma 25 per bundle, columns noisy
#     input | base F | refined | clean.
#
#   scripts/compare-denoise.sh RUN_DIR BUNDLE...
#
# Example: scripts/compare-denoise.sh checkpoints/denoise-s25-crop256 models/denoise-s25 models/denoise-live
# Run it on a quiet machine (pause training: kill -STOP PID) when the speed figures matter.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
RUN=$1; shift
export TRAIN=${TRAIN:-target/release/train}
PTGRM=${PTGRM:-target/release/ptgrm}
OUT=out/compare-denoise
mkdir -p "$OUT"
REPORT=$OUT/report.md
grep -q '^kind = "gaussian_noise"' "$RUN/recipe.toml" || { echo "no gaussian_noise degradation in $RUN/recipe.toml" >&2; exit 1; }

SPLITS=(s15 s25 s50 camera camera-cfa)
for s in 15 25 50; do
  scripts/val-split.sh "$RUN" "$OUT/val-s$s" "s/^sigma = .*/sigma = [$s, $s]/"
done
scripts/val-split.sh "$RUN" "$OUT/val-camera" 's/^sigma = .*/sigma = [5, 5]\nshot = [0.002, 0.01]\nquantize = true/'
# camera-cfa: the same noise as a real camera delivers it, demosaiced (blotches) and 4:2:0
scripts/val-split.sh "$RUN" "$OUT/val-camera-cfa" 's/^sigma = .*/sigma = [5, 5]\nshot = [0.002, 0.01]\nquantize = true\nmosaic = 1.0\nchroma_subsample = 1.0/'

{
  echo "Inputs: the five validation photos degraded from \`$RUN\`'s recipe (splits above); $(nproc) cores; $(date -u +%F)."
  echo
  printf '| bundle | split | input PSNR | base PSNR | refined PSNR | refined - base | baseline PSNR | input SSIM | base SSIM | refined SSIM | baseline SSIM | refined blockiness |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
} > "$REPORT"
for m in "$@"; do
  name=$(basename "$m")
  case $name in denoise-s[0-9]*) splits=("s${name#denoise-s}") ;; *) splits=("${SPLITS[@]}") ;; esac
  for s in "${splits[@]}"; do
    "$PTGRM" eval --model "$m" --clean "$OUT/val-$s/clean" --degraded "$OUT/val-$s/degraded" --provider cpu --baseline --json > "$OUT/$name.$s.eval.json"
    python3 - "$OUT/$name.$s.eval.json" "$m" "$s" >> "$REPORT" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["mean"]
k = ("input", "base", "refined")
p = " | ".join(f"{m[x]['psnr']:.2f}" for x in k)
s = " | ".join(f"{m[x]['ssim']:.4f}" for x in k + ("baseline",))
d = m['refined']['psnr'] - m['base']['psnr']
print(f"| {sys.argv[2]} | {sys.argv[3]} | {p} | {d:+.2f} | {m['baseline']['psnr']:.2f} | {s} | {m['refined']['blockiness']:.2f} |")
PY
  done
done

# A bright camera: full exposure, 200 photons at full scale, read noise 0.01 (sigma about 12
# of 255 at mid grey).
{
  echo
  printf '| bundle | grid score (max, period) | grid amplitude, 8-bit levels (max, period) | fixed-pattern score, amplitude (max, period) | temporal noise ratio | prior flicker | fps 640x360 | fps 1280x720 |\n|---|---|---|---|---|---|---|---|\n'
} >> "$REPORT"
for m in "$@"; do
  name=$(basename "$m")
  frames=40
  case $name in denoise-s[0-9]*) frames=4 ;; esac
  PTGRM=$PTGRM scripts/artefacts-row.sh "$m" "$OUT/$name" "$frames" --exposure 1 --photons 200 --read-noise 0.01 >> "$REPORT"
done

# Before/after figure at sigma 25, every bundle that is scored there.
rows=()
for m in "$@"; do
  name=$(basename "$m")
  case $name in denoise-s[0-9]*) [ "$name" = denoise-s25 ] || continue ;; esac
  d=$OUT/grid/$name; mkdir -p "$d"
  "$PTGRM" restore --model "$m" --provider cpu --emit base "$OUT/val-s25/degraded/kodim23.png" "$d/base.png" >/dev/null
  "$PTGRM" restore --model "$m" --provider cpu "$OUT/val-s25/degraded/kodim23.png" "$d/refined.png" >/dev/null
  rows+=(--row "$OUT/val-s25/degraded/kodim23.png,$d/base.png,$d/refined.png,$OUT/val-s25/clean/kodim23.png")
done
[ ${#rows[@]} -eq 0 ] || "$TRAIN" grid --out "$OUT/grid.png" --crop 160 --centre 0.5,0.45 "${rows[@]}"
cat "$REPORT"
