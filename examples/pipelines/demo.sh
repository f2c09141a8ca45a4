#!/usr/bin/env bash
# Runs ptgrestore on a sample picture darkened to look like low light and writes a viewable
# side-by-side result (left: input, right: restored).
#   examples/pipelines/demo.sh [OUTPUT]        OUTPUT: out/demo.mp4 (default) or a .png path
# Sample: data/val/kodim23.png (scripts/fetch-data.sh), else GStreamer's test pattern.
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
  SRC="filesrc location=$SAMPLE ! decodebin ! videoconvert ! imagefreeze num-buffers=$FRAMES"
else
  echo "demo: $SAMPLE not found (scripts/fetch-data.sh fetches it); using a test pattern" >&2
  SRC="videotestsrc num-buffers=$FRAMES pattern=smpte"
fi
case "$OUT" in
  *.png) SINK="videoconvert ! pngenc snapshot=true ! filesink location=$OUT" ;;
  *.mp4) SINK="videoconvert ! x264enc speed-preset=faster ! video/x-h264,profile=high ! mp4mux ! filesink location=$OUT" ;;
  *) echo "demo: OUTPUT must end in .mp4 or .png" >&2; exit 2 ;;
esac

# Low light: contrast 0.3 around black compresses the picture into the dark end (like a short
# exposure); the element sees I420, as from a camera.
gst-launch-1.0 -q -e \
  $SRC ! videoscale ! video/x-raw,width=$W,height=$H,framerate=15/1 \
  ! videobalance contrast=0.3 brightness=-0.05 ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
  compositor name=mix sink_1::xpos=$W ! $SINK \
  t. ! queue ! textoverlay text="input" valignment=top halignment=left font-desc="Sans 14" ! mix.sink_0 \
  t. ! queue ! ptgrestore $(ptgrestore_props) ! textoverlay text="$LABEL" valignment=top halignment=left font-desc="Sans 14" ! mix.sink_1
echo "demo: wrote $OUT (left: input, right: $LABEL, model $MODEL)"
