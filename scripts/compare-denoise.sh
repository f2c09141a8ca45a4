#!/usr/bin/env bash
# Compares denoising bundles on identical inputs, through the runtime as users run them, and
# writes the tables to out/compare-denoise/report.md (docs/results-denoise.md quotes them):
#   - splits of the validation photos made by scripts/val-split.sh from RUN_DIR's checkpoint
#     (a gaussian_noise recipe) with the noise swapped: white Gaussian sigma 15, 25 and 50, and
#     "camera" (sigma 5 plus signal-dependent shot noise 0.002-0.01, 8 bits). A bundle named
#     denoise-sN (FFDNet with the noise level fixed) is scored on its own sigma only; blind
#     bundles on every split;
#   - `ptgrm eval` (PSNR/SSIM of input, base F and refined F + PTG-RM, refined blockiness),
#     `ptgrm artefacts` on a bright noisy sensor (grid score, temporal noise ratio: output over
#     input standard deviation over 8 captures of a still scene; prior flicker) and
#     `ptgrm bench` (CPU, 640x360 and 1280x720).
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

SPLITS=(s15 s25 s50 camera)
for s in 15 25 50; do
  scripts/val-split.sh "$RUN" "$OUT/val-s$s" "s/^sigma = .*/sigma = [$s, $s]/"
done
scripts/val-split.sh "$RUN" "$OUT/val-camera" 's/^sigma = .*/sigma = [5, 5]\nshot = [0.002, 0.01]\nquantize = true/'

{
  echo "Inputs: the five validation photos degraded from \`$RUN\`'s recipe (splits above); $(nproc) cores; $(date -u +%F)."
  echo
  printf '| bundle | split | input PSNR | base PSNR | refined PSNR | refined - base | input SSIM | base SSIM | refined SSIM | refined blockiness |\n|---|---|---|---|---|---|---|---|---|---|\n'
} > "$REPORT"
for m in "$@"; do
  name=$(basename "$m")
  case $name in denoise-s[0-9]*) splits=("s${name#denoise-s}") ;; *) splits=("${SPLITS[@]}") ;; esac
  for s in "${splits[@]}"; do
    "$PTGRM" eval --model "$m" --clean "$OUT/val-$s/clean" --degraded "$OUT/val-$s/degraded" --provider cpu --json > "$OUT/$name.$s.eval.json"
    python3 - "$OUT/$name.$s.eval.json" "$m" "$s" >> "$REPORT" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["mean"]
k = ("input", "base", "refined")
p = " | ".join(f"{m[x]['psnr']:.2f}" for x in k)
s = " | ".join(f"{m[x]['ssim']:.4f}" for x in k)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {p} | {m['refined']['psnr'] - m['base']['psnr']:+.2f} | {s} | {m['refined']['blockiness']:.2f} |")
PY
  done
done

# A bright camera: full exposure, 200 photons at full scale, read noise 0.01 (sigma about 12
# of 255 at mid grey).
{
  echo
  printf '| bundle | grid score (max, period) | temporal noise ratio | prior flicker | fps 640x360 | fps 1280x720 |\n|---|---|---|---|---|---|\n'
} >> "$REPORT"
for m in "$@"; do
  name=$(basename "$m")
  frames=40
  case $name in denoise-s[0-9]*) frames=4 ;; esac
  "$PTGRM" artefacts --model "$m" --provider cpu --exposure 1 --photons 200 --read-noise 0.01 --json > "$OUT/$name.artefacts.json"
  for size in 640x360 1280x720; do
    "$PTGRM" bench --model "$m" --size "$size" --frames "$frames" --provider cpu --json > "$OUT/$name.bench-$size.json"
  done
  python3 - "$OUT/$name" "$m" >> "$REPORT" <<'PY'
import json, sys
p = sys.argv[1]
a = json.load(open(p + ".artefacts.json"))
f = [json.load(open(f"{p}.bench-{s}.json"))["engine"]["fps"] for s in ("640x360", "1280x720")]
print(f"| {sys.argv[2]} | {a['grid']['max_score']:.2f} (P={a['grid']['worst_period']}) | {a['temporal']['ratio']:.2f} | {a['flicker']['ratio']:.2f}x | {f[0]:.1f} | {f[1]:.1f} |")
PY
done
cat "$REPORT"
