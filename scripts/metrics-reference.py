#!/usr/bin/env python3
"""Reference PSNR/SSIM values for tests/metrics.rs, computed once with scikit-image.

Writes three small PNGs cut from scikit-image's bundled `astronaut` photo (a clean crop, a
noisy copy and a blurred copy) into tests/data/metrics/, then reads them back and stores
PSNR and SSIM of each degraded copy against the clean one in tests/data/metrics-reference.json,
together with the library versions and the exact calls used.

Reproduce (from the repository root):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-image==0.26.0
    /tmp/venv/bin/python scripts/metrics-reference.py
"""
import json
import os

import numpy as np
import scipy
import skimage
from skimage import data, filters, io
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "metrics")
JSON_PATH = os.path.join(ROOT, "tests", "data", "metrics-reference.json")

PSNR_CALL = "peak_signal_noise_ratio(clean, degraded, data_range=255)"
SSIM_CALL = ("structural_similarity(clean, degraded, gaussian_weights=True, sigma=1.5, "
             "use_sample_covariance=False, data_range=255, channel_axis=-1)")


def make_images():
    # An odd, non-square crop (75 rows x 97 columns) around the face, so a swapped width and
    # height or an off-by-one in the window would change the numbers.
    clean = data.astronaut()[40:115, 150:247].copy()
    rng = np.random.default_rng(20240601)
    noisy = np.clip(clean.astype(np.float64) + rng.normal(0.0, 20.0, clean.shape), 0, 255)
    noisy = np.round(noisy).astype(np.uint8)
    blurred = filters.gaussian(clean, sigma=1.2, channel_axis=-1, preserve_range=True)
    blurred = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    # A constant image: SSIM's stabilising constants dominate where variance is zero.
    flat = np.full_like(clean, 128)
    return {"clean.png": clean, "noisy.png": noisy, "blurred.png": blurred, "flat.png": flat}


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, img in make_images().items():
        io.imsave(os.path.join(OUT_DIR, name), img, check_contrast=False)
    # Metrics are computed on the files as written, so the Rust test reads exactly these pixels.
    clean = io.imread(os.path.join(OUT_DIR, "clean.png"))
    pairs = []
    for name in ["noisy.png", "blurred.png", "flat.png"]:
        degraded = io.imread(os.path.join(OUT_DIR, name))
        pairs.append({
            "clean": "metrics/clean.png",
            "degraded": "metrics/" + name,
            "width": int(clean.shape[1]),
            "height": int(clean.shape[0]),
            "psnr": float(peak_signal_noise_ratio(clean, degraded, data_range=255)),
            "ssim": float(structural_similarity(clean, degraded, gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, data_range=255,
                                                channel_axis=-1)),
        })
    doc = {
        "provenance": {
            "script": "scripts/metrics-reference.py",
            "source_image": "skimage.data.astronaut()[40:115, 150:247] (public domain, NASA)",
            "scikit_image": skimage.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "psnr_call": PSNR_CALL,
            "ssim_call": SSIM_CALL,
        },
        "pairs": pairs,
    }
    with open(JSON_PATH, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
