# Sourced by the example scripts: repo root, plugin path, release build on demand.
# GST_PLUGIN_PATH points GStreamer at target/release/libgstptgrestore.so (or PLUGIN_DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PLUGIN_DIR=${PLUGIN_DIR:-$ROOT/target/release}
# The repository's own build is brought up to date (a no-op when it is), so a pulled change
# never runs against a stale plugin; a PLUGIN_DIR given from outside is used as it is.
if [ "$PLUGIN_DIR" = "$ROOT/target/release" ] && command -v cargo >/dev/null; then
  (cd "$ROOT" && cargo build -q --release -p gst-plugin-ptgrestore >&2)
elif [ ! -f "$PLUGIN_DIR/libgstptgrestore.so" ]; then
  echo "no libgstptgrestore.so in $PLUGIN_DIR (and no cargo to build it)" >&2
  exit 1
fi
export GST_PLUGIN_PATH="$PLUGIN_DIR${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

# Element properties from the environment, e.g. MODEL=models/denoise-s25 PROVIDER=cpu.
ptgrestore_props() {
  local p=""
  [ -n "${MODEL:-}" ] && p+=" model=$MODEL"
  [ -n "${PROVIDER:-}" ] && p+=" provider=$PROVIDER"
  [ -n "${STRENGTH:-}" ] && p+=" strength=$STRENGTH"
  [ -n "${PRIOR_INTERVAL:-}" ] && p+=" prior-interval=$PRIOR_INTERVAL"
  echo "$p"
}

# pipeline_fps FRAMES PIPELINE...: frames per second of a gst-launch-1.0 pipeline that pushes
# FRAMES buffers. gst-launch's "Execution ended after" covers PLAYING -> EOS, so model loading
# and the first (prerolled) frame are excluded: fps = (FRAMES - 1) / that time.
pipeline_fps() {
  local frames=$1 out secs
  shift
  out=$(gst-launch-1.0 "$@" 2>&1) || { echo "$out" >&2; return 1; }
  secs=$(echo "$out" | sed -n 's/.*Execution ended after \([0-9]*\):\([0-9]*\):\([0-9.]*\).*/\1 \2 \3/p' \
         | awk '{print $1*3600 + $2*60 + $3}')
  awk -v n="$frames" -v s="$secs" 'BEGIN {printf "%.2f", (n - 1) / s}'
}

# best VALUE...: the largest (best of several rounds, so other load affects every side alike).
best() { printf '%s\n' "$@" | sort -g | tail -1; }
