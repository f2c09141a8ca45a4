#!/usr/bin/env bash
# Pipeline throughput of ptgrestore next to the bare engine (`ptgrm bench`) on the same model
# and frame size, in the same run. Not a test: prints a Markdown table.
#   examples/pipelines/bench.sh [FRAMES]       env: MODEL, PROVIDER, SIZES, FORMATS, ROUNDS, PRIOR_INTERVAL
# Pipeline: videotestsrc num-buffers=N ! video/x-raw,format=F,WxH ! ptgrestore ! fakesink sync=false.
# gst-launch's "Execution ended after" covers PLAYING -> EOS: model loading and the first
# (prerolled) frame are excluded, so fps = (N - 1) / that time. Element and engine runs alternate
# ROUNDS times and the best of each is kept, so other load on the machine affects both alike.
source "$(dirname "$0")/common.sh"
FRAMES=${1:-30}
SIZES=${SIZES:-"640x360 1280x720 1920x1080"}
FORMATS=${FORMATS:-"RGB NV12"}
ROUNDS=${ROUNDS:-2}
# The element's default; the engine bench recomputes the prior just as often.
export PRIOR_INTERVAL=${PRIOR_INTERVAL:-15}
MODEL=${MODEL:-$ROOT/models/lowlight}
if [ ! -f "$MODEL/manifest.json" ]; then
  # Timing only depends on the architecture: the untrained test bundle stands in.
  echo "bench: no model bundle at $MODEL; timing the generated (untrained) test bundle" >&2
  MODEL=$ROOT/out/bench-test-bundle
  (cd "$ROOT" && cargo run -q --release -p ptgrm-model --bin ptgrm-model -- write-test-bundle --out "$MODEL" >&2)
fi
export MODEL
PTGRM="$ROOT/target/release/ptgrm"
[ -x "$PTGRM" ] || (cd "$ROOT" && cargo build -q --release --bin ptgrm)

element_fps() { # format WxH
  # shellcheck disable=SC2046
  pipeline_fps "$FRAMES" videotestsrc num-buffers="$FRAMES" \
    ! "video/x-raw,format=$1,width=${2%x*},height=${2#*x},framerate=30/1" \
    ! ptgrestore $(ptgrestore_props) ! fakesink sync=false
}

engine_fps() { # WxH
  local args=(bench --model "$MODEL" --size "$1" --frames "$FRAMES" --prior-interval "$PRIOR_INTERVAL" --json)
  [ -n "${PROVIDER:-}" ] && args+=(--provider "$PROVIDER")
  "$PTGRM" "${args[@]}" | sed -n 's/^  "engine": {/E/p; s/^    "fps": \([0-9.e+-]*\),*/\1/p' | awk '/^E/{getline; printf "%.2f", $1; exit}'
}

echo "model: $MODEL; $FRAMES frames per run, best of $ROUNDS; $(nproc) cores; $(date -u +%FT%TZ)"
echo
echo "| size | format | element fps | engine fps (ptgrm bench, RGB) | element / engine |"
echo "|---|---|---|---|---|"
for size in $SIZES; do
  engine_runs=()
  declare -A element_runs=()
  for _ in $(seq "$ROUNDS"); do
    for f in $FORMATS; do element_runs[$f]+="$(element_fps "$f" "$size") "; done
    engine_runs+=("$(engine_fps "$size")")
  done
  e=$(best "${engine_runs[@]}")
  for f in $FORMATS; do
    # shellcheck disable=SC2086
    g=$(best ${element_runs[$f]})
    echo "| $size | $f | $g | $e | $(awk -v a="$g" -v b="$e" 'BEGIN {printf "%.3f", a / b}') |"
  done
  unset element_runs
done
