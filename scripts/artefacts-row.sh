#!/usr/bin/env bash
# One row of the compare scripts' artefact and speed table for BUNDLE: `ptgrm artefacts` (grid
# score and pattern amplitude, fixed-pattern score and amplitude, temporal noise ratio, prior flicker; ARTEFACT_ARGS choose the simulated camera) and
# `ptgrm bench` (engine, CPU, 640x360 and 1280x720, FRAMES timed frames each). The JSON
# results are kept as PREFIX.artefacts.json and PREFIX.bench-WxH.json.
#
#   scripts/artefacts-row.sh BUNDLE PREFIX FRAMES [ARTEFACT_ARGS...]
#
# Used by scripts/compare-lowlight.sh and scripts/compare-denoise.sh.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,8p' "$0"; exit 2; }
BUNDLE=$1 PREFIX=$2 FRAMES=$3
shift 3
PTGRM=${PTGRM:-target/release/ptgrm}
"$PTGRM" artefacts --model "$BUNDLE" --provider cpu "$@" --json > "$PREFIX.artefacts.json"
for size in 640x360 1280x720; do
  "$PTGRM" bench --model "$BUNDLE" --size "$size" --frames "$FRAMES" --provider cpu --json > "$PREFIX.bench-$size.json"
done
python3 - "$PREFIX" "$BUNDLE" <<'PY'
import json, sys
p = sys.argv[1]
a = json.load(open(p + ".artefacts.json"))
f = [json.load(open(f"{p}.bench-{s}.json"))["engine"]["fps"] for s in ("640x360", "1280x720")]
g = a['grid']
x = g['fixed_pattern']
print(f"| {sys.argv[2]} | {g['max_score']:.2f} (P={g['worst_period']}) | {g['max_amplitude']:.2f} (P={g['amplitude_period']}) | {x['max_score']:.2f} (P={x['worst_period']}), {x['max_amplitude']:.2f} (P={x['amplitude_period']}) | {a['temporal']['ratio']:.2f} | {a['flicker']['ratio']:.2f}x | {f[0]:.1f} | {f[1]:.1f} |")
PY
