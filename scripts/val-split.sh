#!/usr/bin/env bash
# Writes a validation split: OUT_DIR/clean/NAME.png and OUT_DIR/degraded/NAME.png for each
# validation photo, degraded as RUN_DIR's recipe (edited by SED_SCRIPT, e.g. another noise level
# or seed) degrades it. `train eval --full --save-images` of RUN_DIR's checkpoint makes the
# images, so they are deterministic (seeded by the recipe) and every bundle compared on them
# sees the same inputs.
#
#   scripts/val-split.sh RUN_DIR OUT_DIR [SED_SCRIPT]
#
# Example: scripts/val-split.sh checkpoints/denoise-s25-crop256 out/val-s50 's/^sigma = .*/sigma = [50, 50]/'
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,10p' "$0"; exit 2; }
RUN=$1 DIR=$2 EDIT=${3:-}
TRAIN=${TRAIN:-$(dirname "$0")/../target/release/train}
[ -f "$RUN/checkpoint.bin" ] || { echo "val-split: $RUN has no checkpoint.bin" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$RUN/run.json" "$RUN/checkpoint.bin" "$work/"
sed -e "$EDIT" "$RUN/recipe.toml" > "$work/recipe.toml"
"$TRAIN" eval --run "$work" --full --save-images "$work/images" >/dev/null
rm -rf "$DIR" && mkdir -p "$DIR/clean" "$DIR/degraded"
for f in "$work/images"/*-clean.png; do
  stem=$(basename "$f" -clean.png)
  cp "$f" "$DIR/clean/$stem.png"
  cp "$work/images/$stem-input.png" "$DIR/degraded/$stem.png"
done
