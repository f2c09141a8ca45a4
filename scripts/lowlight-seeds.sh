#!/usr/bin/env bash
# R's gain over its own F on many draws of the low-light degradation, not one. Five validation
# photos with one random exposure each put a standard error of about 0.5 dB on a mean gain (R
# moves single photos by up to 2-3 dB: a frame-wide brightness bet), so one split can neither
# confirm nor refute a +0.3 dB target. This scores each bundle on N seeded draws of the `v1`,
# `wide` and `dark` ranges and `camera` (scripts/lowlight-splits.sh) and prints, per range, the mean
# refined - base PSNR over all photo-draws with its standard error, and the mean PSNR and SSIM
# of refined and base. `camera` is the wide range through a colour filter array and 4:2:0
# chroma, as a real camera delivers it; `yuv420` and `cfa` are its two stages apart; `lit` is a
# well-lit scene (exposure 30-100 %), which a live filter should leave nearly as it is.
#
#   scripts/lowlight-seeds.sh RUN_DIR BUNDLE...      (N: SEEDS=6; ranges: RANGES="v1 wide dark camera yuv420 cfa lit")
#
# Example: scripts/lowlight-seeds.sh checkpoints/lowlight-live-v2 models/lowlight out/lowlight-v3-fresh-r-no-prior
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
RUN=$1; shift
SEEDS=${SEEDS:-6}
PTGRM=${PTGRM:-target/release/ptgrm}
OUT=out/lowlight-seeds
mkdir -p "$OUT"
. scripts/lowlight-splits.sh
RANGES=${RANGES:-v1 wide dark camera yuv420 cfa lit}
# range -> (seed prefix, sed script over the run's recipe)
declare -A SEED=([v1]=7000 [wide]=7100 [dark]=7200 [camera]=7300 [yuv420]=7400 [cfa]=7500 [lit]=7600)
declare -A EDIT=([v1]=$LOWLIGHT_V1 [wide]=$LOWLIGHT_WIDE [dark]=$LOWLIGHT_DARK [camera]=$LOWLIGHT_CAMERA
  [yuv420]=$LOWLIGHT_YUV420 [cfa]=$LOWLIGHT_CFA [lit]=$LOWLIGHT_LIT)
for split in $RANGES; do
  [ -n "${SEED[$split]:-}" ] || { echo "lowlight-seeds: unknown range '$split' (known: ${!SEED[*]})" >&2; exit 2; }
  for k in $(seq 1 "$SEEDS"); do
    # Splits are kept: the same seeds give the same inputs for every later bundle.
    [ -d "$OUT/$split-$k" ] || scripts/val-split.sh "$RUN" "$OUT/$split-$k" "s/^seed = .*/seed = ${SEED[$split]}$k/; ${EDIT[$split]}"
  done
done
echo "| bundle | split | draws | refined - base dB (mean +- s.e.) | refined PSNR | base PSNR | refined SSIM | base SSIM |"
echo "|---|---|---|---|---|---|---|---|"
for bundle in "$@"; do
  for split in $RANGES; do
    for k in $(seq 1 "$SEEDS"); do
      "$PTGRM" eval --model "$bundle" --clean "$OUT/$split-$k/clean" --degraded "$OUT/$split-$k/degraded" --provider cpu --json
    done | python3 -c '
import json, sys, statistics as st
text, dec, gains, refined, base, ssim_r, ssim_b = sys.stdin.read(), json.JSONDecoder(), [], [], [], [], []
i = 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    report, i = dec.raw_decode(text, i)
    for image in report["images"]:
        gains.append(image["refined"]["psnr"] - image["base"]["psnr"])
        refined.append(image["refined"]["psnr"])
        base.append(image["base"]["psnr"])
        ssim_r.append(image["refined"]["ssim"])
        ssim_b.append(image["base"]["ssim"])
se = st.stdev(gains) / len(gains) ** 0.5
print(f"| {sys.argv[1]} | {sys.argv[2]} | {len(gains)} | {st.mean(gains):+.2f} +- {se:.2f} | {st.mean(refined):.2f} | {st.mean(base):.2f} | {st.mean(ssim_r):.3f} | {st.mean(ssim_b):.3f} |")
' "$bundle" "$split"
  done
done
