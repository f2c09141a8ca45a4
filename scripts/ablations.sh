#!/usr/bin/env bash
# Trains and scores the issue-5 / paper Table 3 ablations of PTG-RM from
# recipes/ablation-denoise-s25.toml (frozen FFDNet as F, only R trains, same seed and budget):
#   scripts/ablations.sh [NAME ...]     (default: all; after setup.sh, fetch-data.sh, fetch-weights.sh)
# Each run lands in runs/ablations/NAME with its recipe, checkpoint and eval.json (whole
# validation photos, `train eval --full`); finished runs are kept, so a rerun resumes.
# scripts/results.sh puts the table into docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=(full no-prior no-sve no-ca no-sa no-pos prior-concat residual-head large-no-prior)
if [ $# -gt 0 ]; then NAMES=("$@"); else NAMES=("${ALL[@]}"); fi
export CARGO_TARGET_DIR=${TRAIN_TARGET_DIR:-target}
cargo build -q --release -p ptgrm-train
TRAIN=$CARGO_TARGET_DIR/release/train
BASE=recipes/ablation-denoise-s25.toml
for name in "${NAMES[@]}"; do
  dir=runs/ablations/$name
  if [ -f "$dir/eval.json" ]; then echo "ablations: $name done ($dir/eval.json)"; continue; fi
  mkdir -p runs/ablations/recipes
  recipe=runs/ablations/recipes/$name.toml
  grep -q '^ablation = "full"$' "$BASE" || { echo "ablations: $BASE has no 'ablation = \"full\"' line" >&2; exit 1; }
  sed "s/^ablation = \"full\"$/ablation = \"$name\"/; s/^name = \"ablation-denoise-s25\"$/name = \"ablation-denoise-s25-$name\"/" "$BASE" > "$recipe"
  echo "ablations: training $name"
  "$TRAIN" fit --recipe "$recipe" --out "$dir" > "$dir.log" 2>&1 || { echo "ablations: $name failed, see $dir.log" >&2; exit 1; }
  "$TRAIN" eval --run "$dir" --full >> "$dir.log" 2>&1
done
