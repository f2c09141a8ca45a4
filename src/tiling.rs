//! How a frame becomes graph inputs and graph outputs become a frame again: reflect padding to
//! the model's multiple, overlapping tiles for frames larger than the configured size, cropping
//! the padding off and cross-fading tile seams with linear weights. Memory is bounded by one
//! tile's tensors plus the full-frame accumulators.

use crate::frame::{InputRange, Planar};

/// Graph size for a frame side of `len`: at least 16 (so normalisation layers see enough
/// pixels), rounded up to the pad multiple. The engine and the CLI's bare-ORT baseline both use
/// it, so both run the same shapes.
pub fn padded(len: usize, multiple: usize) -> usize {
    len.max(16).div_ceil(multiple.max(1)) * multiple.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// One tile: the frame window it covers and the padded graph size it runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: Span,
    pub y: Span,
    pub padded_width: usize,
    pub padded_height: usize,
}

/// The tiles of one frame size, and how their outputs are put back together. Built once per
/// frame size and reused, so steady-state frames do not allocate.
#[derive(Debug, Clone, Default)]
pub struct TilePlan {
    width: usize,
    height: usize,
    overlap: usize,
    tiles: Vec<Tile>,
    /// Per-pixel sum of the tiles' blend weights (empty for a single tile).
    wsum: Vec<f32>,
}

impl TilePlan {
    /// `tile_size` 0 (or a frame that fits) gives one whole-frame tile.
    pub fn new(width: usize, height: usize, tile_size: usize, overlap: usize, pad_multiple: usize) -> TilePlan {
        let tiled = tile_size > 0 && (width > tile_size || height > tile_size);
        let (xs, ys) = if tiled {
            (spans(width, tile_size, overlap), spans(height, tile_size, overlap))
        } else {
            (spans(width, 0, 0), spans(height, 0, 0))
        };
        let tiles = ys
            .iter()
            .flat_map(|&y| {
                xs.iter().map(move |&x| Tile {
                    x,
                    y,
                    padded_width: padded(x.len, pad_multiple),
                    padded_height: padded(y.len, pad_multiple),
                })
            })
            .collect();
        let mut plan = TilePlan { width, height, overlap: if tiled { overlap.min(tile_size / 2) } else { 0 }, tiles, wsum: Vec::new() };
        if !plan.is_single() {
            plan.wsum = vec![0.0; width * height];
            for t in &plan.tiles {
                add_weights(t.x, t.y, plan.overlap, width, height, &mut plan.wsum);
            }
        }
        plan
    }

    /// The frame size this plan was made for.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    pub fn is_single(&self) -> bool {
        self.tiles.len() == 1
    }

    /// Copies `tile`'s window of `src` into `dst` as NCHW (N=1) at the padded size, reflecting
    /// at the image borders and mapping [0,1] to the model's range.
    pub fn fill(&self, src: &Planar, tile: &Tile, range: InputRange, dst: &mut Vec<f32>) {
        fill_window(src, tile.x.start, tile.y.start, tile.padded_width, tile.padded_height, range, dst);
    }

    /// Sizes the accumulator `acc` for the frame (zeroed when several tiles add into it).
    pub fn start(&self, acc: &mut Planar) {
        acc.reshape(self.width, self.height);
        if !self.is_single() {
            acc.data.fill(0.0);
        }
    }

    /// Puts one tile's graph output (NCHW at the padded size, model range) into `acc`: cropped
    /// for a single tile, weighted for several, mapped back to [0,1].
    pub fn put(&self, tile: &Tile, out: &[f32], range: InputRange, acc: &mut Planar) {
        if self.is_single() {
            crop_into(out, tile.padded_width, range, acc);
        } else {
            accumulate(out, tile.padded_width, tile.padded_height, tile.x, tile.y, self.overlap, range, acc);
        }
    }

    /// Divides the accumulated tiles by their weights (nothing to do for a single tile).
    pub fn finish(&self, acc: &mut Planar) {
        if self.is_single() {
            return;
        }
        let n = self.width * self.height;
        for c in 0..3 {
            for (v, s) in acc.data[c * n..(c + 1) * n].iter_mut().zip(&self.wsum) {
                *v /= s;
            }
        }
    }
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
fn weight(i: usize, span: Span, total: usize, overlap: usize) -> f32 {
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

fn fill_window(src: &Planar, x0: usize, y0: usize, pw: usize, ph: usize, range: InputRange, dst: &mut Vec<f32>) {
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
                    *o = range.to_model(*v);
                }
            } else {
                for (x, o) in out.iter_mut().enumerate() {
                    *o = range.to_model(row[reflect((x0 + x) as isize, w)]);
                }
            }
        }
    }
}

/// Crops a single whole-frame tile (row length `pw`) into `acc`, mapping back to [0,1].
fn crop_into(tile: &[f32], pw: usize, range: InputRange, acc: &mut Planar) {
    let (w, h) = (acc.width, acc.height);
    let ph = tile.len() / (3 * pw);
    for c in 0..3 {
        for y in 0..h {
            let src = &tile[(c * ph + y) * pw..][..w];
            let dst = &mut acc.data[(c * h + y) * w..][..w];
            if range.is_unit() {
                dst.copy_from_slice(src);
            } else {
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = range.from_model(*v);
                }
            }
        }
    }
}

/// Adds the `sx` x `sy` tile output (NCHW, row length `pw`, rows `ph`), weighted, into `acc`;
/// values are mapped back from the model's range to [0,1].
#[allow(clippy::too_many_arguments)]
fn accumulate(tile: &[f32], pw: usize, ph: usize, sx: Span, sy: Span, overlap: usize, range: InputRange, acc: &mut Planar) {
    let (w, h) = (acc.width, acc.height);
    let n = w * h;
    for y in 0..sy.len {
        let wy = weight(sy.start + y, sy, h, overlap);
        for x in 0..sx.len {
            let wt = wy * weight(sx.start + x, sx, w, overlap);
            let i = (sy.start + y) * w + sx.start + x;
            for c in 0..3 {
                acc.data[c * n + i] += wt * range.from_model(tile[(c * ph + y) * pw + x]);
            }
        }
    }
}

/// Adds the tile's blend weights into `wsum` (row length `w`, height `h`).
fn add_weights(sx: Span, sy: Span, overlap: usize, w: usize, h: usize, wsum: &mut [f32]) {
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
    fn tiles_put_back_together_give_the_frame_in_any_input_range() {
        // An identity "model" run tile by tile over a padded, tiled frame returns the frame:
        // padding cropped, seams blended, the range mapped there and back once.
        let (w, h) = (300usize, 170usize);
        let mut src = Planar::default();
        src.reshape(w, h);
        for (i, v) in src.data.iter_mut().enumerate() {
            *v = ((i * 37) % 101) as f32 / 100.0;
        }
        for range in [InputRange::new(0.0, 1.0), InputRange::new(-1.0, 1.0), InputRange::new(0.0, 255.0)] {
            for (tile_size, overlap) in [(0usize, 0usize), (64, 16), (128, 8)] {
                let plan = TilePlan::new(w, h, tile_size, overlap, 8);
                assert_eq!(plan.is_single(), tile_size == 0);
                let (mut acc, mut input) = (Planar::default(), Vec::new());
                plan.start(&mut acc);
                for t in plan.tiles() {
                    assert_eq!((t.padded_width % 8, t.padded_height % 8), (0, 0));
                    plan.fill(&src, t, range, &mut input);
                    plan.put(t, &input, range, &mut acc);
                }
                plan.finish(&mut acc);
                assert!(plan.wsum.iter().all(|&s| s > 0.0));
                let worst = acc.data.iter().zip(&src.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(worst < 1e-4, "{range:?} tile {tile_size}: off by {worst}");
            }
        }
    }

    #[test]
    fn padding_rounds_up_to_the_multiple_and_at_least_16() {
        assert_eq!(padded(1, 8), 16);
        assert_eq!(padded(17, 8), 24);
        assert_eq!(padded(640, 32), 640);
        assert_eq!(padded(641, 32), 672);
    }

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }
}
