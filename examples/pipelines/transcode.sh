#!/usr/bin/env bash
# Restores a video file: decode -> ptgrestore -> H.264 (x264enc) in MP4.
#   examples/pipelines/transcode.sh INPUT OUTPUT.mp4
# Video only. x264enc comes from gstreamer1.0-plugins-ugly (scripts/setup.sh installs it).
source "$(dirname "$0")/common.sh"
IN=${1:?usage: transcode.sh INPUT OUTPUT.mp4}
OUT=${2:?usage: transcode.sh INPUT OUTPUT.mp4}
mkdir -p "$(dirname "$OUT")"
exec gst-launch-1.0 -e \
  filesrc location="$IN" ! decodebin name=dec \
  dec. ! queue ! videoconvert ! video/x-raw,format=I420 \
  ! ptgrestore $(ptgrestore_props) \
  ! x264enc speed-preset=faster ! video/x-h264,profile=high ! mp4mux ! filesink location="$OUT"
