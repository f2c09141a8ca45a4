#!/usr/bin/env python3
"""Int8 weights and activations for the deep levels of a live bundle's F (static QDQ).

Called by scripts/quantize-bundle.sh, which makes the calibration photos; see there for why and
for what was measured. Writes OUT as a copy of BUNDLE whose merged graph has QuantizeLinear /
DequantizeLinear pairs around F's convolutions below its first U-Net level (names base.enc{i},
base.dec{i} and base.up{i} with i >= 1, base.middle, base.down*); ONNX Runtime fuses each pair
into an int8 convolution. The first level, the cell head, R and the prior stay float: the first
level carries the pixel-scale detail (quantizing every convolution cost the live denoiser 0.37 dB
at sigma 25, the deep levels alone 0.05 dB).

    quantize_bundle.py BUNDLE CALIBRATION_DIR OUT COMMAND
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

DEEP = ("base.enc", "base.dec", "base.up")
ALWAYS = ("base.middle", "base.down")
CROP = 320
CROPS_PER_PHOTO = 2
SEED = 20261204


def is_deep(weight: str) -> bool:
    """True for F's convolutions below its first level (see the module doc)."""
    if weight.startswith(ALWAYS):
        return True
    for prefix in DEEP:
        if weight.startswith(prefix):
            level = weight[len(prefix):].split(".")[0]
            return level.isdigit() and int(level) >= 1
    return False


class Crops(CalibrationDataReader):
    """Seeded crops of the degraded photos, each with the prior the bundle's G gives it."""

    def __init__(self, photos, prior_graph):
        rng = np.random.default_rng(SEED)
        prior = ort.InferenceSession(prior_graph, providers=["CPUExecutionProvider"])
        self.feeds = []
        for path in photos:
            im = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
            h, w = im.shape[:2]
            if h < CROP or w < CROP:
                continue
            for _ in range(CROPS_PER_PHOTO):
                y, x = rng.integers(0, h - CROP + 1), rng.integers(0, w - CROP + 1)
                crop = np.ascontiguousarray(im[y:y + CROP, x:x + CROP].transpose(2, 0, 1)[None])
                g = prior.run(None, {"image": crop})[0]
                self.feeds.append({"image": crop, "prior": g})
        if not self.feeds:
            sys.exit(f"quantize_bundle: no calibration photo of at least {CROP}x{CROP}")
        self.next = iter(self.feeds)

    def get_next(self):
        return next(self.next, None)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    bundle, calibration, out, command = sys.argv[1:]
    manifest = json.load(open(os.path.join(bundle, "manifest.json")))
    merged = manifest["graphs"].get("merged")
    prior = manifest["graphs"].get("prior")
    if merged is None or prior is None:
        sys.exit(f"quantize_bundle: {bundle} has no merged and prior graph (a live bundle has both)")
    photos = sorted(glob.glob(os.path.join(calibration, "*.png")))
    if not photos:
        sys.exit(f"quantize_bundle: no PNG photos in {calibration}")

    work = tempfile.mkdtemp()
    try:
        source = os.path.join(bundle, merged["file"])
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        graph = onnx.load(prepared).graph
        convs = [n for n in graph.node if n.op_type == "Conv"]
        deep = [n.name for n in convs if len(n.input) > 1 and is_deep(n.input[1])]
        if not deep:
            sys.exit(f"quantize_bundle: {source} has no deep-level F convolutions (is F built in?)")
        keep_float = [n.name for n in convs if n.name not in deep]

        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(bundle, out)
        target = os.path.join(out, merged["file"])
        quantize_static(
            prepared, target, Crops(photos, os.path.join(bundle, prior["file"])),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"], nodes_to_exclude=keep_float,
            calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": 99.99},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    merged["sha256"] = hashlib.sha256(open(target, "rb").read()).hexdigest()
    p = manifest["provenance"]
    p["command"] = f"{p['command']} && {command}"
    note = (f"F's {len(deep)} deep-level convolutions int8 (per-channel weights, uint8 activations, "
            f"static QDQ by onnxruntime {ort.__version__}, calibrated on {len(photos)} degraded training "
            f"photos, {CROPS_PER_PHOTO} crops of {CROP} each, 99.99th percentile); the rest float")
    p["note"] = f"{p['note']}; {note}" if p.get("note") else note
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(note)


if __name__ == "__main__":
    main()
