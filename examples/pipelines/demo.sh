#!/usr/bin/env bash
# Runs ptgrestore on a camera-in-the-dark clip and writes a viewable side-by-side result
# (left: input, right: restored).
#   examples/pipelines/demo.sh [OUTPUT]        OUTPUT: out/demo.mp4 (default) or a .png path
# Input: `ptgrm night --cfa` captures of data/val/kodim23.png (scripts/fetch-data.sh): 3 %
# exposure, photon and read noise sensed through a colour filter array and demosaiced, a new
# noise draw every frame, as a night camera delivers (CFA=0: independent per-pixel noise).
# Without the sample, GStreamer's test pattern darkened by videobalance (no noise).
# Model: $MODEL, else models/lowlight; if neither exists, an UNTRAINED generated bundle is used
# so the pipeline still runs (its output is labelled as such and shows no restoration).
source "$(dirname "$0")/common.sh"
OUT=${1:-$ROOT/out/demo.mp4}
FRAMES=${FRAMES:-60}
W=${WIDTH:-640}
H=${HEIGHT:-424}
SAMPLE=${SAMPLE:-$ROOT/data/val/kodim23.png}
mkdir -p "$(dirname "$OUT")"

LABEL="ptgrestore"
MODEL=${MODEL:-$ROOT/models/lowlight}
if [ ! -f "$MODEL/manifest.json" ]; then
  echo "demo: no model bundle at $MODEL; using an UNTRAINED generated bundle (output is not restored)" >&2
  MODEL=$ROOT/out/demo-untrained-bundle
  (cd "$ROOT" && cargo run -q --release -p ptgrm-model --bin ptgrm-model -- write-test-bundle --out "$MODEL" >&2)
  LABEL="UNTRAINED test model"
fi
export MODEL

if [ -f "$SAMPLE" ]; then
  (cd "$ROOT" && cargo build -q --release -p ptgrm-cli >&2)
  CAPTURES=$ROOT/out/demo-night
  rm -rf "$CAPTURES"
  "$ROOT/target/release/ptgrm" night "$SAMPLE" "$CAPTURES" --frames "$FRAMES" \
    --exposure "${EXPOSURE:-0.03}" --photons "${PHOTONS:-200}" --read-noise "${READ_NOISE:-0.005}" \
    $([ "${CFA:-1}" = 0 ] || echo --cfa) 2>/dev/null
  SRC="multifilesrc location=$CAPTURES/%03d.png index=0 stop-index=$((FRAMES - 1)) caps=image/png,framerate=15/1 ! pngdec ! videoconvert"
  DARKEN=""
else
  echo "demo: $SAMPLE not found (scripts/fetch-data.sh fetches it); using a darkened test pattern" >&2
  SRC="videotestsrc num-buffers=$FRAMES pattern=smpte"
  # contrast 0.3 around black compresses the picture into the dark end (a short exposure).
  DARKEN="! videobalance contrast=0.3 brightness=-0.05"
fi
case "$OUT" in
  *.png) SINK="videoconvert ! pngenc snapshot=true ! filesink location=$OUT" ;;
  *.mp4) SINK="videoconvert ! x264enc speed-preset=faster ! video/x-h264,profile=high ! mp4mux ! filesink location=$OUT" ;;
  *) echo "demo: OUTPUT must end in .mp4 or .png" >&2; exit 2 ;;
esac

# The element sees I420, as from a camera.
gst-launch-1.0 -q -e \
  $SRC ! videoscale ! video/x-raw,width=$W,height=$H,framerate=15/1 \
  $DARKEN ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
  compositor name=mix sink_1::xpos=$W ! $SINK \
  t. ! queue ! textoverlay text="input" valignment=top halignment=left font-desc="Sans 14" ! mix.sink_0 \
  t. ! queue ! ptgrestore $(ptgrestore_props) ! textoverlay text="$LABEL" valignment=top halignment=left font-desc="Sans 14" ! mix.sink_1
echo "demo: wrote $OUT (left: input, right: $LABEL, model $MODEL)"
