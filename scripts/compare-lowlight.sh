#!/usr/bin/env bash
# Compares low-light bundles on identical inputs, through the runtime as users run them:
#   - the validation photos degraded as the run's recipe does ("wide"), and a "dark" split
#     (exposure 1-5 %, 50-300 photons: a camera at night), made by `train eval --save-images`;
#   - `ptgrm eval` (PSNR/SSIM of base and refined), `ptgrm artefacts` (grid score, temporal
#     noise) and `ptgrm bench` (CPU, 640x360 and 1280x720, one after the other).
#
#   scripts/compare-lowlight.sh RUN_DIR BUNDLE...      (writes out/compare-lowlight/)
#
# Example: scripts/compare-lowlight.sh runs/lowlight-live-v2 models/lowlight models/lowlight-v2
# Run it on a quiet machine (pause training: kill -STOP PID) when the speed figures matter.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,11p' "$0"; exit 2; }
RUN=$1; shift
TRAIN=${TRAIN:-target/release/train}
PTGRM=${PTGRM:-target/release/ptgrm}
OUT=out/compare-lowlight
mkdir -p "$OUT"

# split NAME RUN: clean/ and degraded/ folders of the validation photos as RUN degrades them.
split() {
  local name=$1 run=$2 dir=$OUT/val-$1
  rm -rf "$dir" "$dir.tmp"
  "$TRAIN" eval --run "$run" --full --save-images "$dir.tmp" >/dev/null
  mkdir -p "$dir/clean" "$dir/degraded"
  for f in "$dir.tmp"/*-clean.png; do
    stem=$(basename "$f" -clean.png)
    cp "$f" "$dir/clean/$stem.png"
    cp "$dir.tmp/$stem-input.png" "$dir/degraded/$stem.png"
  done
  rm -rf "$dir.tmp"
}

split wide "$RUN"
# The dark split: the same run with the degradation narrowed to night captures.
DARK_RUN=$OUT/dark-run
rm -rf "$DARK_RUN" && mkdir -p "$DARK_RUN"
cp "$RUN/run.json" "$RUN/checkpoint.bin" "$DARK_RUN/"
sed -e 's/^exposure = .*/exposure = [0.01, 0.05]/' -e 's/^photons = .*/photons = [50.0, 300.0]/' \
  "$RUN/recipe.toml" > "$DARK_RUN/recipe.toml"
grep -q '^exposure = \[0.01, 0.05\]' "$DARK_RUN/recipe.toml" || { echo "no low_light degradation in $RUN/recipe.toml" >&2; exit 1; }
split dark "$DARK_RUN"

printf '| bundle | split | input PSNR | base PSNR | refined PSNR | input SSIM | base SSIM | refined SSIM |\n|---|---|---|---|---|---|---|---|\n'
for m in "$@"; do
  for s in wide dark; do
    "$PTGRM" eval --model "$m" --clean "$OUT/val-$s/clean" --degraded "$OUT/val-$s/degraded" --provider cpu --json \
      > "$OUT/$(basename "$m").$s.eval.json"
    python3 - "$OUT/$(basename "$m").$s.eval.json" "$m" "$s" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["mean"]
p = [m[k]["psnr"] for k in ("input", "base", "refined")]
s = [m[k]["ssim"] for k in ("input", "base", "refined")]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {p[0]:.2f} | {p[1]:.2f} | {p[2]:.2f} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} |")
EOF
  done
done

echo
printf '| bundle | grid score (max, period) | temporal noise ratio | fps 640x360 | fps 1280x720 |\n|---|---|---|---|---|\n'
for m in "$@"; do
  "$PTGRM" artefacts --model "$m" --provider cpu --json > "$OUT/$(basename "$m").artefacts.json"
  for size in 640x360 1280x720; do
    "$PTGRM" bench --model "$m" --size "$size" --frames 40 --provider cpu --json > "$OUT/$(basename "$m").bench-$size.json"
  done
  python3 - "$OUT/$(basename "$m")" "$m" <<'EOF'
import json, sys
p = sys.argv[1]
a = json.load(open(p + ".artefacts.json"))
f = [json.load(open(f"{p}.bench-{s}.json"))["engine"]["fps"] for s in ("640x360", "1280x720")]
print(f"| {sys.argv[2]} | {a['grid']['max_score']:.2f} (P={a['grid']['worst_period']}) | {a['temporal']['ratio']:.2f} | {f[0]:.1f} | {f[1]:.1f} |")
EOF
done
