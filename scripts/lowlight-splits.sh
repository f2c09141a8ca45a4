# Sourced by scripts/compare-lowlight.sh and scripts/lowlight-seeds.sh: the low-light validation
# ranges as sed scripts over a run's recipe (checkpoints/lowlight-live-v2's degradation is `wide`:
# exposure 1-30 %, 50-3000 photons, read noise up to 0.01).
# v1: recipes/lowlight-live-s8.toml's brighter range, the inputs of docs/results.md until v2.
LOWLIGHT_V1='s/^exposure = .*/exposure = [0.03, 0.3]/; s/^photons = .*/photons = [300.0, 3000.0]/; s/^read_noise = .*/read_noise = [0.0005, 0.005]/'
LOWLIGHT_WIDE=''
# dark: a camera at night (issue 10).
LOWLIGHT_DARK='s/^exposure = .*/exposure = [0.01, 0.05]/; s/^photons = .*/photons = [50.0, 300.0]/'
# camera: the wide range as a real camera delivers it, every capture sensed through an RGGB
# colour filter array and demosaiced (noise in blotches, not per pixel) and its chroma
# subsampled 4:2:0 (a webcam's YUV or MJPEG); train/src/degrade.rs, `mosaic`, `chroma_subsample`.
LOWLIGHT_CAMERA='s/^cast = \(.*\)/cast = \1\nmosaic = 1.0\nchroma_subsample = 1.0/'
# camera's two stages apart, to tell which one a model fails on:
# yuv420: the wide range's plain noise with 4:2:0 chroma, as any YUV video brings it (a webcam's
# YUY2 or MJPEG, a decoded H.264 file, `videoconvert` to I420 before the element).
LOWLIGHT_YUV420='s/^cast = \(.*\)/cast = \1\nchroma_subsample = 1.0/'
# cfa: the filter array's demosaiced noise with full chroma (a camera that delivers RGB).
LOWLIGHT_CFA='s/^cast = \(.*\)/cast = \1\nmosaic = 1.0/'
# lit: a well-lit scene or a camera whose auto-exposure has already raised its gain (exposure
# 30-100 %, moderate noise): a live filter sees these too, and should leave them nearly as they are.
LOWLIGHT_LIT='s/^exposure = .*/exposure = [0.3, 1.0]/; s/^photons = .*/photons = [300.0, 3000.0]/; s/^read_noise = .*/read_noise = [0.0005, 0.005]/'
