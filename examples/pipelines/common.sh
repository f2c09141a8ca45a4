# Sourced by the example scripts: repo root, plugin path, release build on demand.
# GST_PLUGIN_PATH points GStreamer at target/release/libgstptgrestore.so (or PLUGIN_DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PLUGIN_DIR=${PLUGIN_DIR:-$ROOT/target/release}
if [ ! -f "$PLUGIN_DIR/libgstptgrestore.so" ]; then
  echo "building the plugin (cargo build --release -p gst-plugin-ptgrestore)" >&2
  (cd "$ROOT" && cargo build --release -p gst-plugin-ptgrestore >&2)
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
