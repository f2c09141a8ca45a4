#!/usr/bin/env python3
"""Helpers of scripts/gpu-pack.sh (standard library and Pillow only).

  gpu_pack_data.py DATA_DIR OUT_DIR MAX_SIDE
      copies DATA_DIR/train and DATA_DIR/val to OUT_DIR; training photos longer than MAX_SIDE
      are downscaled to it (Lanczos, JPEG quality 95, no chroma subsampling).
  gpu_pack_data.py --params-only SRC DST
      copies a PTGRMCK1 checkpoint (train/src/checkpoint.rs) keeping only the "param" group.
"""
import json
import os
import shutil
import struct
import sys


def params_only(src, dst):
    b = open(src, "rb").read()
    if b[:8] != b"PTGRMCK1":
        sys.exit(f"{src}: not a ptgrm checkpoint")
    n = struct.unpack("<Q", b[8:16])[0]
    header = json.loads(b[16:16 + n])
    off, keep, chunks = 16 + n, [], []
    for e in header["entries"]:
        count = 1
        for d in e["shape"]:
            count *= d
        if e["group"] == "param":
            keep.append(e)
            chunks.append(b[off:off + 4 * count])
        off += 4 * count
    if off != len(b):
        sys.exit(f"{src}: {len(b)} bytes, the directory describes {off}")
    header["entries"] = keep
    hb = json.dumps(header).encode()
    with open(dst, "wb") as f:
        f.write(b"PTGRMCK1" + struct.pack("<Q", len(hb)) + hb + b"".join(chunks))


def photos(data, out, max_side):
    from PIL import Image

    for split in ("train", "val"):
        os.makedirs(os.path.join(out, split), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(data, split))):
            src = os.path.join(data, split, name)
            im = Image.open(src)
            if split == "train" and max(im.size) > max_side:
                s = max_side / max(im.size)
                im = im.convert("RGB").resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)
                im.save(os.path.join(out, split, os.path.splitext(name)[0] + ".jpg"), quality=95, subsampling=0)
            else:
                shutil.copy(src, os.path.join(out, split, name))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--params-only":
        params_only(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4:
        photos(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
