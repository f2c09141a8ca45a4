#!/usr/bin/env bash
# Live camera enhancement: v4l2src -> ptgrestore -> screen.
#   examples/pipelines/camera.sh [DEVICE] [WIDTHxHEIGHT]
# Cameras deliver YUY2, NV12 or I420, which ptgrestore handles natively (no conversion in
# front); the videoconvert after it only adapts to the video sink if needed.
# VIDEOSINK=... replaces autovideosink.
source "$(dirname "$0")/common.sh"
DEVICE=${1:-/dev/video0}
SIZE=${2:-1280x720}
exec gst-launch-1.0 -e \
  v4l2src device="$DEVICE" ! "video/x-raw,width=${SIZE%x*},height=${SIZE#*x}" \
  ! ptgrestore $(ptgrestore_props) ! videoconvert ! ${VIDEOSINK:-autovideosink} sync=false
