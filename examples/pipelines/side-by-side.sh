#!/usr/bin/env bash
# Input (left) and ptgrestore's output (right) in one picture, from a camera or a file.
#   examples/pipelines/side-by-side.sh [DEVICE-or-FILE]      (default /dev/video0)
# The input is split with tee; compositor places the restored copy to the right.
# VIDEOSINK=... replaces autovideosink (e.g. fakesink to try it without a display).
source "$(dirname "$0")/common.sh"
INPUT=${1:-/dev/video0}
W=${WIDTH:-640}
H=${HEIGHT:-360}
if [ -c "$INPUT" ]; then
  SRC="v4l2src device=$INPUT ! videoconvert ! videoscale"
else
  SRC="filesrc location=$INPUT ! decodebin ! videoconvert ! videoscale"
fi
exec gst-launch-1.0 -e \
  $SRC ! video/x-raw,format=I420,width=$W,height=$H ! tee name=t \
  compositor name=mix sink_1::xpos=$W ! videoconvert ! ${VIDEOSINK:-autovideosink} sync=false \
  t. ! queue ! mix.sink_0 \
  t. ! queue ! ptgrestore $(ptgrestore_props) ! mix.sink_1
