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
