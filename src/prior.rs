//! The prior schedule for video: g = G(I_d) is recomputed every `interval` frames from the whole
//! frame and exponentially smoothed, so the refiner's guidance neither flickers nor costs a prior
//! run per frame. With interval 1 and smoothing 0 (stills) every frame gets its own prior.
//!
//! Between two prior runs the vector glides: each frame moves it 1/interval of the way from the
//! value in use to the new one, reaching it on the frame before the next run. Measured on the
//! live low-light model (`ptgrm artefacts`, 60-frame dark pan, interval 15), switching at once
//! made the output's mean luma jump at every prior frame by several times the largest
//! frame-to-frame step elsewhere; the glide spreads that jump over the interval, at the cost of
//! following a scene change up to one interval late (`reset` takes a new prior at once).

use crate::error::{Error, Result};
use crate::frame::Planar;

/// Frames are shrunk to at most this many pixels per side before a prior graph that resizes
/// inside: the graph's own resize (to 224 for MobileNetV2) loses nothing, and 4K frames stay cheap.
pub const PRIOR_MAX_SIDE: usize = 448;

#[derive(Debug, Clone)]
pub struct PriorSchedule {
    interval: u32,
    smoothing: f32,
    glide: bool,
    frames_since_update: u32,
    /// The vector in use this frame, on its way from `from` to `to`.
    value: Vec<f32>,
    from: Vec<f32>,
    to: Vec<f32>,
    valid: bool,
}

impl PriorSchedule {
    pub fn new(dim: usize, interval: u32, smoothing: f32, glide: bool) -> Result<Self> {
        let zeros = vec![0.0; dim];
        let mut s = PriorSchedule {
            interval: 1,
            smoothing: 0.0,
            glide,
            frames_since_update: 0,
            value: zeros.clone(),
            from: zeros.clone(),
            to: zeros,
            valid: false,
        };
        s.set_interval(interval)?;
        s.set_smoothing(smoothing)?;
        Ok(s)
    }

    pub fn set_interval(&mut self, n: u32) -> Result<()> {
        if n == 0 {
            return Err(Error::invalid("prior interval must be at least 1 frame"));
        }
        self.interval = n;
        Ok(())
    }

    pub fn set_smoothing(&mut self, a: f32) -> Result<()> {
        if !(0.0..1.0).contains(&a) {
            return Err(Error::invalid(format!("prior smoothing {a} must be in [0, 1)")));
        }
        self.smoothing = a;
        Ok(())
    }

    /// Glide between prior runs (true) or switch to each new prior at once (false).
    pub fn set_glide(&mut self, glide: bool) {
        self.glide = glide;
    }

    /// Forget the current prior (after a seek or scene cut): the next frame computes a fresh one.
    pub fn reset(&mut self) {
        self.valid = false;
    }

    /// Whether this frame must run the prior graph; advances the frame counter (and the glide).
    pub fn due(&mut self) -> bool {
        let due = !self.valid || self.frames_since_update + 1 >= self.interval;
        if !due {
            self.frames_since_update += 1;
            self.glide();
        }
        due
    }

    /// Takes a freshly computed prior: the first after a reset is used as is, later ones are
    /// blended with the previous one (smoothing) and glided to over the interval.
    pub fn update(&mut self, fresh: &[f32]) {
        if self.valid {
            let a = self.smoothing;
            for (t, f) in self.to.iter_mut().zip(fresh) {
                *t = a * *t + (1.0 - a) * f;
            }
            self.from.copy_from_slice(&self.value);
        } else {
            self.to.copy_from_slice(fresh);
            self.from.copy_from_slice(fresh);
        }
        self.valid = true;
        self.frames_since_update = 0;
        self.glide();
    }

    fn glide(&mut self) {
        let t = if self.glide { ((self.frames_since_update + 1) as f32 / self.interval as f32).min(1.0) } else { 1.0 };
        for ((v, f), to) in self.value.iter_mut().zip(&self.from).zip(&self.to) {
            *v = f + (to - f) * t;
        }
    }

    pub fn value(&self) -> &[f32] {
        &self.value
    }
}

/// Bilinear resize of a planar image (area-averaging is unnecessary: the prior only needs the
/// gist), sampling pixel centres like align_corners=false.
pub fn resize_bilinear(src: &Planar, dst: &mut Planar, width: usize, height: usize) {
    dst.reshape(width, height);
    let (sw, sh) = (src.width, src.height);
    let sx = sw as f32 / width as f32;
    let sy = sh as f32 / height as f32;
    for c in 0..3 {
        let s = src.plane(c);
        let d = &mut dst.data[c * width * height..(c + 1) * width * height];
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
            let y0 = fy as usize;
            let y1 = (y0 + 1).min(sh - 1);
            let wy = fy - y0 as f32;
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
                let x0 = fx as usize;
                let x1 = (x0 + 1).min(sw - 1);
                let wx = fx - x0 as f32;
                let top = s[y0 * sw + x0] * (1.0 - wx) + s[y0 * sw + x1] * wx;
                let bot = s[y1 * sw + x0] * (1.0 - wx) + s[y1 * sw + x1] * wx;
                d[y * width + x] = top * (1.0 - wy) + bot * wy;
            }
        }
    }
}

/// The part of a frame a prior grid is read for: a rectangle in frame-normalised coordinates
/// (0..1 across the frame; beyond 1 where padding extends a tile past the frame's edge).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridWindow {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl GridWindow {
    pub const WHOLE: GridWindow = GridWindow { x0: 0.0, y0: 0.0, x1: 1.0, y1: 1.0 };

    /// The window of `len_x` x `len_y` pixels at (`x`, `y`) of a `width` x `height` frame.
    pub fn of_pixels(x: usize, y: usize, len_x: usize, len_y: usize, width: usize, height: usize) -> GridWindow {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        GridWindow { x0: x as f32 / w, y0: y as f32 / h, x1: (x + len_x) as f32 / w, y1: (y + len_y) as f32 / h }
    }
}

/// A per-region prior (`[D, cells, cells]`, row-major, covering the whole frame) read for a
/// window of the frame: the same number of cells, each sampled bilinearly at its centre from
/// the frame's grid with edge clamping (the sampling of [`resize_bilinear`]). A refiner that
/// runs on one tile, or a trainer that cuts a crop from a larger view, sees the grid of its
/// own window, aligned as for a whole frame.
pub fn window_grid(grid: &[f32], cells: usize, window: GridWindow, out: &mut Vec<f32>) {
    let plane = cells * cells;
    out.clear();
    if plane == 0 {
        return;
    }
    let taps = |lo: f32, hi: f32| -> Vec<(usize, usize, f32)> {
        (0..cells)
            .map(|i| {
                let u = lo + (i as f32 + 0.5) / cells as f32 * (hi - lo);
                let f = (u * cells as f32 - 0.5).clamp(0.0, (cells - 1) as f32);
                let a = f as usize;
                (a, (a + 1).min(cells - 1), f - a as f32)
            })
            .collect()
    };
    let (tx, ty) = (taps(window.x0, window.x1), taps(window.y0, window.y1));
    for g in grid.chunks_exact(plane) {
        for &(y0, y1, wy) in &ty {
            for &(x0, x1, wx) in &tx {
                let top = g[y0 * cells + x0] * (1.0 - wx) + g[y0 * cells + x1] * wx;
                let bot = g[y1 * cells + x0] * (1.0 - wx) + g[y1 * cells + x1] * wx;
                out.push(top * (1.0 - wy) + bot * wy);
            }
        }
    }
}

/// Size the prior graph is fed: the manifest's fixed size, or the frame shrunk to PRIOR_MAX_SIDE.
pub fn prior_input_size(fixed: Option<[u32; 2]>, width: usize, height: usize) -> (usize, usize) {
    if let Some([w, h]) = fixed {
        return (w as usize, h as usize);
    }
    let long = width.max(height);
    if long <= PRIOR_MAX_SIDE {
        return (width, height);
    }
    let s = PRIOR_MAX_SIDE as f32 / long as f32;
    (((width as f32 * s).round() as usize).max(1), ((height as f32 * s).round() as usize).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid whose cell (y, x) of channel c holds 100c + 10y + x.
    fn labelled_grid(channels: usize, cells: usize) -> Vec<f32> {
        (0..channels * cells * cells).map(|i| (100 * (i / (cells * cells)) + 10 * (i / cells % cells) + i % cells) as f32).collect()
    }

    #[test]
    fn the_whole_frame_window_returns_the_grid() {
        let grid = labelled_grid(3, 7);
        let mut out = Vec::new();
        window_grid(&grid, 7, GridWindow::WHOLE, &mut out);
        assert_eq!(out, grid);
    }

    #[test]
    fn a_quarter_window_reads_its_own_corner_of_the_grid() {
        // Cells 0..2 of a 4-cell grid cover the left half; the window's 4 cells sample them at
        // 0.25-cell steps: clamped at the frame edge, then interpolated between cells 0 and 1.
        let grid = labelled_grid(2, 4);
        let mut out = Vec::new();
        window_grid(&grid, 4, GridWindow::of_pixels(0, 0, 32, 32, 64, 64), &mut out);
        assert_eq!(out.len(), grid.len());
        let row0: Vec<f32> = out[0..4].to_vec();
        assert_eq!(row0, vec![0.0, 0.25, 0.75, 1.25]);
        // Channel 1, bottom-right cell of the window: between cells (1, 1) and (2, 2) of channel 1.
        assert!((out[16 + 15] - (100.0 + 12.5 + 1.25)).abs() < 1e-4, "{}", out[16 + 15]);
    }

    #[test]
    fn a_window_past_the_frame_edge_repeats_the_edge_cells() {
        let grid = labelled_grid(1, 4);
        let mut out = Vec::new();
        window_grid(&grid, 4, GridWindow { x0: 1.0, y0: 0.0, x1: 2.0, y1: 1.0 }, &mut out);
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(out[y * 4 + x], grid[y * 4 + 3], "row {y} column {x}");
            }
        }
    }

    #[test]
    fn interval_runs_the_prior_every_n_frames() {
        let mut s = PriorSchedule::new(2, 3, 0.0, true).unwrap();
        let mut runs = Vec::new();
        for i in 0..7 {
            if s.due() {
                runs.push(i);
                s.update(&[i as f32, 0.0]);
            }
        }
        assert_eq!(runs, vec![0, 3, 6]);
    }

    #[test]
    fn smoothing_blends_after_the_first_update_and_reset_restarts() {
        let mut s = PriorSchedule::new(1, 1, 0.75, true).unwrap();
        s.update(&[4.0]);
        assert_eq!(s.value(), &[4.0]);
        s.update(&[0.0]);
        assert_eq!(s.value(), &[3.0]);
        s.reset();
        assert!(s.due());
        s.update(&[8.0]);
        assert_eq!(s.value(), &[8.0]);
    }

    #[test]
    fn between_runs_the_prior_glides_in_equal_steps_to_the_new_value() {
        let mut s = PriorSchedule::new(1, 4, 0.0, true).unwrap();
        let mut used = Vec::new();
        for i in 0..9 {
            if s.due() {
                // Priors 0, 8, 16 computed at frames 0, 4, 8.
                s.update(&[2.0 * i as f32]);
            }
            used.push(s.value()[0]);
        }
        assert_eq!(used, vec![0.0, 0.0, 0.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        // Without the glide each new prior is used at once.
        let mut s = PriorSchedule::new(1, 4, 0.0, false).unwrap();
        let used: Vec<f32> = (0..6)
            .map(|i| {
                if s.due() {
                    s.update(&[2.0 * i as f32]);
                }
                s.value()[0]
            })
            .collect();
        assert_eq!(used, vec![0.0, 0.0, 0.0, 0.0, 8.0, 8.0]);
        // A reset takes the next prior at once.
        s.reset();
        assert!(s.due());
        s.update(&[-1.0]);
        assert_eq!(s.value(), &[-1.0]);
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(PriorSchedule::new(1, 0, 0.0, true).is_err());
        assert!(PriorSchedule::new(1, 1, 1.0, true).is_err());
        assert!(PriorSchedule::new(1, 1, f32::NAN, true).is_err());
    }

    #[test]
    fn resize_keeps_a_constant_image_constant() {
        let mut src = Planar::default();
        src.reshape(5, 3);
        src.data.fill(0.25);
        let mut dst = Planar::default();
        resize_bilinear(&src, &mut dst, 11, 7);
        assert!(dst.data.iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert_eq!(prior_input_size(None, 3840, 2160), (448, 252));
        assert_eq!(prior_input_size(Some([224, 224]), 10, 10), (224, 224));
    }
}
