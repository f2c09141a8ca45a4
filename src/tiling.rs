//! Tiles for frames larger than the configured size: overlapping spans, reflect padding to the
//! model's multiple, and linear cross-fade weights so tile seams disappear. Memory is bounded by
//! one tile's tensors plus the full-frame accumulators.

use crate::frame::Planar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// Spans of at most `tile` covering 0..total, neighbours overlapping by at least `overlap`,
/// spread evenly so no tile is a thin sliver.
pub fn spans(total: usize, tile: usize, overlap: usize) -> Vec<Span> {
    if tile == 0 || total <= tile {
        return vec![Span { start: 0, len: total }];
    }
    let overlap = overlap.min(tile / 2);
    let step = tile - overlap;
    let n = (total - overlap).div_ceil(step);
    (0..n).map(|i| Span { start: (i * (total - tile)) / (n - 1), len: tile }).collect()
}

/// Blend weight of pixel `i` (absolute) inside `span`: ramps up from the span's interior edges
/// over `overlap` pixels, 1 elsewhere; never 0, so every pixel is covered.
#[inline]
pub fn weight(i: usize, span: Span, total: usize, overlap: usize) -> f32 {
    let ramp = (overlap + 1) as f32;
    let mut w: f32 = 1.0;
    if span.start > 0 {
        w = w.min((i - span.start + 1) as f32 / ramp);
    }
    if span.start + span.len < total {
        w = w.min((span.start + span.len - i) as f32 / ramp);
    }
    w
}

/// Index into 0..n mirrored at both ends without repeating the edge pixel (like numpy "reflect").
#[inline]
pub fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m >= n as isize { period - m } else { m }) as usize
}

/// Copies the `pw` x `ph` window at (x0, y0) of `src` into `dst` as NCHW (N=1), reflecting at
/// the image borders, mapping [0,1] to the model's range with `scale`, `offset`.
pub fn fill_window(src: &Planar, x0: usize, y0: usize, pw: usize, ph: usize, scale: f32, offset: f32, dst: &mut Vec<f32>) {
    dst.resize(3 * pw * ph, 0.0);
    let (w, h) = (src.width, src.height);
    for c in 0..3 {
        let plane = src.plane(c);
        for y in 0..ph {
            let sy = reflect((y0 + y) as isize, h);
            let row = &plane[sy * w..(sy + 1) * w];
            let out = &mut dst[(c * ph + y) * pw..(c * ph + y + 1) * pw];
            if x0 + pw <= w {
                for (o, v) in out.iter_mut().zip(&row[x0..x0 + pw]) {
                    *o = v * scale + offset;
                }
            } else {
                for (x, o) in out.iter_mut().enumerate() {
                    *o = row[reflect((x0 + x) as isize, w)] * scale + offset;
                }
            }
        }
    }
}

/// Adds the `sx` x `sy` tile output (NCHW, row length `pw`, rows `ph`), weighted, into `acc`;
/// values are mapped back from the model's range to [0,1].
#[allow(clippy::too_many_arguments)]
pub fn accumulate(tile: &[f32], pw: usize, ph: usize, sx: Span, sy: Span, overlap: usize, inv_scale: f32, offset: f32, acc: &mut Planar) {
    let (w, h) = (acc.width, acc.height);
    let n = w * h;
    for y in 0..sy.len {
        let wy = weight(sy.start + y, sy, h, overlap);
        for x in 0..sx.len {
            let wt = wy * weight(sx.start + x, sx, w, overlap);
            let i = (sy.start + y) * w + sx.start + x;
            for c in 0..3 {
                acc.data[c * n + i] += wt * (tile[(c * ph + y) * pw + x] - offset) * inv_scale;
            }
        }
    }
}

/// Adds the tile's blend weights into `wsum` (row length `w`, height `h`).
pub fn add_weights(sx: Span, sy: Span, overlap: usize, w: usize, h: usize, wsum: &mut [f32]) {
    for y in 0..sy.len {
        let wy = weight(sy.start + y, sy, h, overlap);
        for x in 0..sx.len {
            wsum[(sy.start + y) * w + sx.start + x] += wy * weight(sx.start + x, sx, w, overlap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_everything_with_the_requested_overlap() {
        for total in [1usize, 100, 1000, 1001, 4320, 7680] {
            for (tile, overlap) in [(256usize, 32usize), (512, 16), (2048, 64)] {
                let s = spans(total, tile, overlap);
                assert_eq!(s[0].start, 0);
                let last = s.last().unwrap();
                assert_eq!(last.start + last.len, total);
                for p in s.windows(2) {
                    assert!(p[1].start + overlap.min(tile / 2) <= p[0].start + p[0].len, "{total} {tile}: {p:?}");
                    assert!(p[1].start > p[0].start);
                }
                assert!(s.iter().all(|sp| sp.len <= tile.max(total.min(tile))));
            }
        }
    }

    #[test]
    fn weights_are_positive_and_blend_to_identity() {
        // Accumulating a constant image over overlapping tiles gives back the constant.
        let (w, h) = (300usize, 170usize);
        let mut acc = Planar::default();
        acc.reshape(w, h);
        let mut wsum = vec![0.0; w * h];
        for sy in spans(h, 64, 16) {
            for sx in spans(w, 64, 16) {
                let tile = vec![0.5f32; 3 * sx.len * sy.len];
                accumulate(&tile, sx.len, sy.len, sx, sy, 16, 1.0, 0.0, &mut acc);
                add_weights(sx, sy, 16, w, h, &mut wsum);
            }
        }
        assert!(wsum.iter().all(|&s| s > 0.0));
        for c in 0..3 {
            for i in 0..w * h {
                assert!((acc.data[c * w * h + i] / wsum[i] - 0.5).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }
}
