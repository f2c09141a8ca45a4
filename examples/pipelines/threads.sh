#!/usr/bin/env bash
# Chooses ptgrestore's CPU threading by what a real pipeline does, not the element alone:
#   H.264 file -> decode -> ptgrestore -> x264enc -> mp4mux -> file
# for every combination of the element's `threads` and `spinning`, at each size. ONNX Runtime's
# idle threads busy-wait (spin) by default; in a pipeline they compete with the decoder and
# the encoder for the same cores. Not a test: prints a Markdown table.
#   examples/pipelines/threads.sh [FRAMES]     env: MODEL, SIZES, THREADS, SPINNING, ROUNDS
# The clip is `ptgrm night` captures of data/val/kodim23.png (scripts/fetch-data.sh) encoded
# once per size; fps = (FRAMES - 1) / gst-launch's "Execution ended after" (PLAYING -> EOS, so
# model loading is excluded). Best of ROUNDS; run it on an otherwise idle machine.
source "$(dirname "$0")/common.sh"
FRAMES=${1:-90}
SIZES=${SIZES:-"640x360 1280x720"}
THREADS=${THREADS:-"0 1 2"}
SPINNING=${SPINNING:-"true false"}
ROUNDS=${ROUNDS:-2}
MODEL=${MODEL:-$ROOT/models/lowlight}
SAMPLE=${SAMPLE:-$ROOT/data/val/kodim23.png}
[ -f "$SAMPLE" ] || { echo "threads: $SAMPLE not found (scripts/fetch-data.sh)" >&2; exit 1; }
(cd "$ROOT" && cargo build -q --release -p ptgrm-cli >&2)
WORK=$ROOT/out/threads
mkdir -p "$WORK"
"$ROOT/target/release/ptgrm" night "$SAMPLE" "$WORK/night" --frames 30 2>/dev/null

clip() { # WxH -> path of an H.264 MP4 of FRAMES frames at that size
  local f=$WORK/night-$1.mp4
  if [ ! -f "$f" ]; then
    gst-launch-1.0 -q multifilesrc location="$WORK/night/%03d.png" index=0 stop-index=29 loop=true \
        caps=image/png,framerate=30/1 num-buffers="$FRAMES" ! pngdec ! videoconvert ! videoscale \
      ! "video/x-raw,format=I420,width=${1%x*},height=${1#*x}" \
      ! x264enc speed-preset=faster ! mp4mux ! filesink location="$f" >&2
  fi
  echo "$f"
}

fps() { # clip threads spinning -> frames per second
  pipeline_fps "$FRAMES" filesrc location="$1" ! qtdemux ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 \
    ! ptgrestore model="$MODEL" provider=cpu threads="$2" spinning="$3" \
    ! x264enc speed-preset=faster ! mp4mux ! filesink location="$WORK/out.mp4"
}

echo "model: $MODEL; decode -> ptgrestore -> x264enc (faster) -> mp4mux; $FRAMES frames, best of $ROUNDS; $(nproc) cores; $(date -u +%FT%TZ)"
echo
echo "| size | threads | spinning | pipeline fps |"
echo "|---|---|---|---|"
for size in $SIZES; do
  c=$(clip "$size")
  for t in $THREADS; do
    for s in $SPINNING; do
      runs=()
      for _ in $(seq "$ROUNDS"); do runs+=("$(fps "$c" "$t" "$s")"); done
      echo "| $size | $t | $s | $(best "${runs[@]}") |"
    done
  done
done
