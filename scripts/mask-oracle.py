#!/usr/bin/env python3
"""How much Eq. 1's mask could add to F at a given resolution, before training R.

For each photo of a split, runs F (the merged graph's `base` output; F does not read the prior)
and computes the oracle mask: per k x k block the least-squares factor a on F's correction,
clipped to [0, 1] as a sigmoid mask is, Ī = I_d + a·(Î − I_d). Its PSNR is the most an R whose
mask lives at 1/k of the frame can reach with the mask alone (its residual at that resolution
only adds smooth corrections). k = 0 means one factor per frame. The last column is a guided
mask at 8 x 8: per block an affine map of two per-pixel guides (the local size of F's
correction and the local contrast of F's output, 3 x 3), unclipped: what an edge-aware
upsampling of R's maps could add. A learned R gets a fraction of these; when the ceiling is
below a target, no training budget reaches it at that resolution.

These in-sample ceilings flatter small blocks: a factor fitted to a block's clean pixels also
fits that block's noise. With --held-out the fits use one colour of a pixel checkerboard and
are scored on the other, and three designs are compared by that honest ceiling (dB over F on
the held-out pixels): Eq. 1's mask per 8 x 8 block; a smoothing map per 8 x 8 block,
Î + a (box3(Î) - Î) (one map R could predict at 1/8, applied at full resolution); and a 3 x 3
kernel per 16 x 16 block applied to Î (nine maps: the per-pixel kernels of PTG-CSA, at 1/16);
and a zero-sum 3 x 3 filter of Î per 16 x 16 block, Î + sum_d w_d (Î shifted by d - Î) (eight
maps: what `refiner.restored_filter` predicts per pixel).

F is the merged graph's `base` output of a live bundle, or the separate base graph of a bundle
with an external F (the FFDNet bundles; F reads the image alone there).

    .deps/quant-venv/bin/python scripts/mask-oracle.py [--held-out] models/denoise-live out/compare-denoise/val-s25 ...

Needs numpy, Pillow and onnxruntime (scripts/quantize-bundle.sh's venv has them).
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

BLOCKS = [0, 8, 4, 2, 1]


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - b) ** 2))


def load(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def oracle(degraded, clean, restored, k):
    diff, err = restored - degraded, clean - degraded
    h, w, _ = diff.shape
    if k == 0:
        a = np.clip(np.sum(diff * err) / np.sum(diff * diff), 0, 1)
        return psnr(degraded + a * diff, clean)
    d = diff.reshape(h // k, k, w // k, k, 3)
    e = err.reshape(h // k, k, w // k, k, 3)
    a = np.clip((d * e).sum((1, 3, 4)) / ((d * d).sum((1, 3, 4)) + 1e-12), 0, 1)
    return psnr(degraded + (d * a[:, None, :, None, None]).reshape(h, w, 3), clean)


def box3(x):
    """3 x 3 mean with edge padding."""
    p = np.pad(x, 1, mode="edge")
    h, w = x.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9


def guided_oracle(degraded, clean, restored, k=8):
    diff, err = restored - degraded, clean - degraded
    h, w, _ = diff.shape
    size = np.sqrt(box3((diff**2).mean(2)))
    luma = restored.mean(2)
    contrast = np.sqrt(np.maximum(box3(luma**2) - box3(luma) ** 2, 0))
    feats = [diff, size[..., None] * diff, contrast[..., None] * diff]
    f = np.stack([x.reshape(h // k, k, w // k, k, 3) for x in feats], -1)
    e = err.reshape(h // k, k, w // k, k, 3)
    normal = np.einsum("iajbcf,iajbcg->ijfg", f, f) + 1e-9 * np.eye(len(feats))
    coef = np.linalg.solve(normal, np.einsum("iajbcf,iajbc->ijf", f, e)[..., None])[..., 0]
    return psnr(degraded + np.einsum("iajbcf,ijf->iajbc", f, coef).reshape(h, w, 3), clean)


def shifted(x):
    """The nine 3 x 3 neighbours of every pixel (edge padding), row by row."""
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w, _ = x.shape
    return [p[i : i + h, j : j + w] for i in range(3) for j in range(3)]


def held_out_gain(feats, target, base, clean, k):
    """dB over `base` on the odd pixels of a checkerboard when, per k x k block, `target` is
    least-squares fitted on the even pixels as a combination of `feats` (the same coefficients
    for the three channels) and base + fit is scored against `clean`."""
    h, w, _ = target.shape
    even = ((np.add.outer(np.arange(h), np.arange(w)) % 2) == 0).astype(np.float32)
    f = np.stack([x.reshape(h // k, k, w // k, k, 3) for x in feats], -1)
    e = target.reshape(h // k, k, w // k, k, 3)
    m = even.reshape(h // k, k, w // k, k, 1)
    normal = np.einsum("iajbcf,iajbcg->ijfg", f * m[..., None], f) + 1e-6 * np.eye(len(feats))
    coef = np.linalg.solve(normal, np.einsum("iajbcf,iajbc->ijf", f * m[..., None], e * m)[..., None])[..., 0]
    out = base + np.einsum("iajbcf,ijf->iajbc", f, coef).reshape(h, w, 3)
    odd = even == 0
    mse = lambda x: ((np.clip(x, 0, 1) - clean) ** 2).mean(2)[odd].mean()
    return 10 * np.log10(mse(base) / mse(out))


def held_out(degraded, clean, restored):
    near = shifted(restored)
    differences = [x - restored for i, x in enumerate(near) if i != 4]
    return [
        held_out_gain([restored - degraded], clean - restored, restored, clean, 8),
        held_out_gain([sum(near) / 9 - restored], clean - restored, restored, clean, 8),
        held_out_gain(near, clean - restored, restored, clean, 16),
        held_out_gain(differences, clean - restored, restored, clean, 16),
    ]


def main():
    args = sys.argv[1:]
    honest = "--held-out" in args
    args = [a for a in args if a != "--held-out"]
    if len(args) < 2:
        sys.exit(__doc__)
    bundle = Path(args[0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    graphs = manifest["graphs"]
    merged = graphs.get("merged")
    if merged is not None and "base" in merged["outputs"]:
        session = ort.InferenceSession(str(bundle / merged["file"]), ort.SessionOptions())
        prior = np.zeros((1, manifest["prior"]["dim"]), np.float32)
        run_f = lambda image: session.run(["base"], {"image": image, "prior": prior})[0]
    elif "base" in graphs:
        session = ort.InferenceSession(str(bundle / graphs["base"]["file"]), ort.SessionOptions())
        run_f = lambda image: session.run(["base"], {"image": image})[0]
    else:
        sys.exit(f"{bundle}: needs a base graph, or a merged graph with a `base` output")
    # whole 16 x 16 blocks, and the sizes the bundle accepts
    pad = int(np.lcm(manifest.get("pad_multiple", 32), 16))
    labels = ["frame" if k == 0 else f"{k}x{k}" for k in BLOCKS]
    if honest:
        print("split | F PSNR | held out, dB over F: mask 8x8 | smoothing map 8x8 | 3x3 kernel per 16x16 | zero-sum 3x3 filter per 16x16")
    else:
        print("split | F PSNR | " + " | ".join(f"oracle mask {l}" for l in labels) + " | guided 8x8")
    for split in map(Path, args[1:]):
        photos = sorted((split / "degraded").iterdir())
        if not photos:
            sys.exit(f"{split}/degraded: no photos")
        sums = np.zeros(5 if honest else 2 + len(BLOCKS))
        for path in photos:
            degraded, clean = load(path), load(split / "clean" / path.name)
            h, w = degraded.shape[0] // pad * pad, degraded.shape[1] // pad * pad
            degraded, clean = degraded[:h, :w], clean[:h, :w]
            restored = run_f(degraded.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
            if honest:
                sums += [psnr(restored, clean)] + held_out(degraded, clean, restored)
            else:
                ceilings = [oracle(degraded, clean, restored, k) for k in BLOCKS]
                sums += [psnr(restored, clean)] + ceilings + [guided_oracle(degraded, clean, restored)]
        mean = sums / len(photos)
        print(f"{split.name} | " + " | ".join(f"{v:.2f}" for v in mean))


if __name__ == "__main__":
    main()
