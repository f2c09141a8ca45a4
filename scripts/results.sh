#!/usr/bin/env bash
# Regenerates docs/results.md from `ptgrm eval` and `ptgrm bench` runs of the shipped bundles on
# the validation photos (sporco's five, never used for training), and from `train eval --full`
# of the committed same-budget ablation checkpoints.
#   scripts/results.sh            (after scripts/setup.sh and scripts/train-models.sh's imports)
# Degraded validation images come from `train eval --save-images` of the committed checkpoint
# named in VAL_RUN for the bundle's task (deterministic, seeded by the recipe), so every model of
# a task sees the same inputs. Bundles without one are skipped with a note. Pause training runs
# while this runs: the speed columns are measured on the same two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/results
mkdir -p "$OUT"
cargo build -q --release -p ptgrm-cli
CARGO_TARGET_DIR=${TRAIN_TARGET_DIR:-target} cargo build -q --release -p ptgrm-train
TRAIN=${TRAIN_TARGET_DIR:-target}/release/train
PTGRM=target/release/ptgrm

# task -> committed run whose validation degradation defines the task's test inputs
declare -A VAL_RUN=([lowlight]=checkpoints/lowlight-live-v2-smooth [denoise-s15]=checkpoints/denoise-s15-midtones
  [denoise-s25]=checkpoints/denoise-s25-nearclip [denoise-s50]=checkpoints/denoise-s50-meanfree-no-prior)
# bundle -> task whose inputs score it, where that is neither its name nor its manifest's task:
# the blind live denoiser is held against FFDNet at sigma 25 (issue 11's target)
declare -A SCORED_AS=([denoise-live]=denoise-s25)
# same-budget pairs (committed checkpoints, whole photos): what the prior and R_p's width buy
ABLATIONS="denoise-s25-crop256 denoise-s25-no-prior denoise-s25-meanfree denoise-s25-nearclip denoise-s25-nearclip-no-prior denoise-s50-meanfree denoise-s50-meanfree-no-prior denoise-s50-meanfree-kp144 denoise-s50-meanfree-no-prior-kp144
  lowlight-live-v3-fresh-r lowlight-live-v3-fresh-r-no-prior lowlight-live-v3-fresh-r384 lowlight-live-v3-fresh-r384-no-prior
  lowlight-live-v3-fresh-r384-seed2 lowlight-live-v3-fresh-r384-no-prior-seed2 lowlight-live-v3-fresh-r384-seed3 lowlight-live-v3-fresh-r384-no-prior-seed3
  lowlight-live-v3-fresh-r384-b8 lowlight-live-v3-fresh-r384-b8-no-prior lowlight-live-v3-fresh-r384-b8-seed2 lowlight-live-v3-fresh-r384-b8-no-prior-seed2
  lowlight-live-v3-fresh-r384-edge lowlight-live-v3-fresh-r384-edge-no-prior lowlight-live-v3-fresh-r384-edge-seed2 lowlight-live-v3-fresh-r384-edge-no-prior-seed2
  lowlight-live-v3-fresh-r384-edge-seed3 lowlight-live-v3-fresh-r384-edge-no-prior-seed3
  lowlight-live-v4-deep-r384 lowlight-live-v4-deep-r384-no-prior lowlight-live-v4-deep-r384-seed2 lowlight-live-v4-deep-r384-no-prior-seed2"

make_val() {
  local task=$1 run=${VAL_RUN[$1]:-}
  [ -n "$run" ] && [ -f "$run/checkpoint.bin" ] || return 1
  # cached per task, remade when VAL_RUN names another run
  [ "$(cat "$OUT/val-$task/run" 2>/dev/null)" = "$run" ] && return 0
  TRAIN=$TRAIN scripts/val-split.sh "$run" "$OUT/val-$task" && echo "$run" > "$OUT/val-$task/run"
}

: > "$OUT/models.txt"
for m in models/*/; do
  m=${m%/}; name=$(basename "$m")
  [ -f "$m/manifest.json" ] || continue
  task=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["task"])' "$m/manifest.json")
  [ "$task" = lowlight ] || task=${SCORED_AS[$name]:-$name}
  if ! make_val "$task"; then echo "results: no validation run for $name ($task), skipped" >&2; continue; fi
  "$PTGRM" eval --model "$m" --clean "$OUT/val-$task/clean" --degraded "$OUT/val-$task/degraded" --provider cpu --json > "$OUT/$name.eval.json"
  frames=${BENCH_FRAMES:-30}
  # FFDNet at full resolution takes seconds per frame on a CPU: a few frames give its rate.
  case $name in denoise-s[0-9]*) frames=${BENCH_FRAMES_DENOISE:-4} ;; esac
  for size in 640x360 1280x720; do
    "$PTGRM" bench --model "$m" --size "$size" --frames "$frames" --prior-interval "${PRIOR_INTERVAL:-15}" --provider cpu --json > "$OUT/$name.bench-$size.json"
  done
  echo "$name $task" >> "$OUT/models.txt"
done
# Before/after grid (docs/results-grid.png): one validation crop per model, columns input | base
# F | refined (F + PTG-RM) | clean, all through the shipped bundles.
GRID_ROWS=()
while read -r name task; do
  for stem in ${GRID_IMAGES:-kodim23}; do
    d="$OUT/grid/$name"; mkdir -p "$d"
    "$PTGRM" restore --model "models/$name" --provider cpu --emit base "$OUT/val-$task/degraded/$stem.png" "$d/$stem-base.png" >/dev/null
    "$PTGRM" restore --model "models/$name" --provider cpu "$OUT/val-$task/degraded/$stem.png" "$d/$stem-refined.png" >/dev/null
    GRID_ROWS+=(--row "$OUT/val-$task/degraded/$stem.png,$d/$stem-base.png,$d/$stem-refined.png,$OUT/val-$task/clean/$stem.png")
  done
done < "$OUT/models.txt"
[ ${#GRID_ROWS[@]} -eq 0 ] || "$TRAIN" grid --out docs/results-grid.png --crop 160 --centre 0.5,0.45 "${GRID_ROWS[@]}"

# Ablations: `train eval --full` of each committed checkpoint, in a copy so that checkpoints/
# stays as committed.
: > "$OUT/runs.txt"
for r in $ABLATIONS; do
  d="$OUT/ablations/$r"; mkdir -p "$d"
  cp "checkpoints/$r/run.json" "checkpoints/$r/checkpoint.bin" "checkpoints/$r/recipe.toml" "$d/"
  "$TRAIN" eval --run "$d" --full >/dev/null
  rm "$d/checkpoint.bin"
  echo "$d" >> "$OUT/runs.txt"
done
python3 scripts/results.py "$OUT" > docs/results.md
echo "results: wrote docs/results.md"
