#!/usr/bin/env bash
# Reproduces the shipped bundles from scratch: photos and third-party weights from the package
# registries, the imported prior and base graphs, then `train fit` + `train export` for each.
#   scripts/train-models.sh [BUNDLE ...]    BUNDLE: lowlight lowlight-plain lowlight-v1 lowlight-full denoise-s15
#   denoise-s25 denoise-s50 denoise-live
# (default: all). Runs go to runs/RECIPE (kept: an interrupted fit resumes), bundles to
# models/BUNDLE. A recipe that starts from another run's weights (train.init_from) has that run
# trained first, in the directory it names (the committed checkpoints/ copy is already complete,
# so resuming it is a no-op). CPU times on the 2-core development machine: models/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A RECIPE=([lowlight]=lowlight-live-lit-normal-r [lowlight-v1]=lowlight-live-s8 [lowlight-full]=lowlight [denoise-s15]=denoise-s15-midtones [denoise-s25]=denoise-s25-nearclip [denoise-s50]=denoise-s50-meanfree-no-prior [denoise-live]=denoise-live-deep15-r512
  [lowlight-plain]=lowlight-live-v4-gate-grid)
# bundle -> the runs its recipe's train.init_from chain needs, in order: DIR:RECIPE trains RECIPE
# in DIR; DIR:FROM+N copies run FROM to DIR and continues it by N steps (one warm restart)
declare -A INIT=([lowlight-plain]="checkpoints/denoise-live-fast:denoise-live-fast checkpoints/lowlight-live-v3:lowlight-live-v3 checkpoints/lowlight-live-v3-context:lowlight-live-v3-context checkpoints/lowlight-live-v3-crop256:lowlight-live-v3-crop256 checkpoints/lowlight-live-v3-crop256-edge:lowlight-live-v3-crop256-edge checkpoints/lowlight-live-v4-deep:lowlight-live-v4-deep checkpoints/lowlight-live-v4-deep-crop384:lowlight-live-v4-deep-crop384 checkpoints/lowlight-live-v4-deep-r384:lowlight-live-v4-deep-r384"
  [denoise-live]="checkpoints/denoise-live-fast:denoise-live-fast checkpoints/denoise-live-fast-40k:checkpoints/denoise-live-fast+24000 checkpoints/denoise-live-deep:denoise-live-deep checkpoints/denoise-live-deep-50k:checkpoints/denoise-live-deep+20000 checkpoints/denoise-live-deep15:denoise-live-deep15")
# the default continues the plain-sensor bundle's whole chain: F fine-tuned on camera captures
# (one warm restart of 3,000 steps), then on exposures up to 100 % with a tenth well exposed,
# then R refitted to that F
INIT[lowlight]="${INIT[lowlight-plain]} checkpoints/lowlight-live-v4-gate-grid:lowlight-live-v4-gate-grid checkpoints/lowlight-live-camera:lowlight-live-camera checkpoints/lowlight-live-camera-6k:checkpoints/lowlight-live-camera+3000 checkpoints/lowlight-live-lit-normal:lowlight-live-lit-normal"
# bundle -> steps its run adds to its recipe's schedule once the recipe's are done, one warm
# restart per number (train fit --resume --extend-steps N; run.json records the running total,
# so each happens once)
declare -A EXTEND=()
# bundles whose F's deep levels ship as int8 (scripts/quantize-bundle.sh, after the export)
declare -A QUANTIZE=([lowlight]=1 [denoise-live]=1 [lowlight-plain]=1)
if [ $# -gt 0 ]; then BUNDLES=("$@"); else BUNDLES=(lowlight lowlight-plain lowlight-v1 lowlight-full denoise-s15 denoise-s25 denoise-s50 denoise-live); fi
for b in "${BUNDLES[@]}"; do
  [ -n "${RECIPE[$b]:-}" ] || { echo "train-models: unknown bundle $b (known: ${!RECIPE[*]})" >&2; exit 2; }
done

bash scripts/fetch-data.sh
bash scripts/fetch-weights.sh >/dev/null
cargo build -q --release -p ptgrm-model --bin ptgrm-model
export CARGO_TARGET_DIR=${TRAIN_TARGET_DIR:-target}
cargo build -q --release -p ptgrm-train
MODEL_TOOL=target/release/ptgrm-model
TRAIN=$CARGO_TARGET_DIR/release/train

mkdir -p .deps/priors .deps/bases
[ -f .deps/priors/mobilenet_v2.onnx ] ||
  "$MODEL_TOOL" import-mobilenet-v2 --pth .deps/weights/mobilenet_v2-b0353104.pth --out .deps/priors/mobilenet_v2.onnx
# The per-region prior (7x7 cells) of the prior_grid recipes.
[ -f .deps/priors/mobilenet_v2_grid7.onnx ] ||
  "$MODEL_TOOL" import-mobilenet-v2 --pth .deps/weights/mobilenet_v2-b0353104.pth --out .deps/priors/mobilenet_v2_grid7.onnx --grid
for s in 15 25 50; do
  [ -f ".deps/bases/ffdnet_color_s$s.onnx" ] ||
    "$MODEL_TOOL" import-ffdnet --pth .deps/weights/ffdnet_color.pth --sigma "$s" --out ".deps/bases/ffdnet_color_s$s.onnx"
done

fit() { # run-directory recipe: start the run, or resume it (a finished run returns at once)
  if [ -f "$1/checkpoint.bin" ]; then
    "$TRAIN" fit --out "$1" --resume
  else
    "$TRAIN" fit --recipe "recipes/$2.toml" --out "$1"
  fi
}

extend() { # run-directory total n: add n steps unless the run's extensions already reach total
  local done_steps
  done_steps=$(sed -n 's/.*"extended_steps": *\([0-9]*\).*/\1/p' "$1/run.json")
  if [ "${done_steps:-0}" -lt "$2" ]; then
    "$TRAIN" fit --out "$1" --resume --extend-steps "$3"
  fi
}

for b in "${BUNDLES[@]}"; do
  r=${RECIPE[$b]}
  for step in ${INIT[$b]:-}; do
    dir=${step%%:*} what=${step#*:}
    case $what in
      *+*)
        from=${what%+*} n=${what##*+}
        [ -f "$dir/checkpoint.bin" ] || cp -r "$from" "$dir"
        extend "$dir" "$n" "$n" ;;
      *) fit "$dir" "$what" ;;
    esac
  done
  fit "runs/$r" "$r"
  total=0
  for n in ${EXTEND[$b]:-}; do
    total=$((total + n))
    extend "runs/$r" "$total" "$n"
  done
  rm -rf "models/$b" && "$TRAIN" export --run "runs/$r" --out "models/$b"
  if [ -n "${QUANTIZE[$b]:-}" ]; then
    TRAIN=$TRAIN scripts/quantize-bundle.sh "models/$b" "runs/$r"
  fi
done
