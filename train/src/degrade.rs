//! Synthetic degradations applied on the fly to clean photos. Each is a recipe-configurable
//! distribution (`[[degradation]]` tables, applied in order); `sample` draws one instance's
//! parameters and `apply` renders it, so tests can pin the parameters and measure the result.

use crate::imagebuf::Image;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Degradation {
    LowLight(LowLight),
    GaussianNoise(GaussianNoise),
    Rain(Rain),
    MotionBlur(MotionBlur),
    Defocus(Defocus),
}

impl Degradation {
    pub fn apply(&self, img: &Image, rng: &mut Rng) -> Image {
        self.apply_noted(img, rng).0
    }

    /// `apply`, also returning the noise level drawn by a `gaussian_noise` stage (sigma, 8-bit
    /// units): what a non-blind frozen F such as FFDNet must be told.
    fn apply_noted(&self, img: &Image, rng: &mut Rng) -> (Image, Option<f32>) {
        match self {
            Degradation::LowLight(d) => (d.apply(img, &d.sample(rng), rng), None),
            Degradation::GaussianNoise(d) => {
                let drawn = d.sample(rng);
                (d.apply(img, drawn, rng), Some(drawn.0 as f32))
            }
            Degradation::Rain(d) => (d.apply(img, &d.sample(rng), rng), None),
            Degradation::MotionBlur(d) => (convolve(img, &d.sample(rng)), None),
            Degradation::Defocus(d) => (convolve(img, &disk_kernel(d.sample(rng))), None),
        }
    }

    /// Pixels a blur reaches beyond a crop: the context to degrade around it.
    pub fn margin(&self) -> usize {
        match self {
            Degradation::MotionBlur(d) => d.size[1] / 2 + 1,
            Degradation::Defocus(d) => d.radius[1].ceil() as usize + 1,
            Degradation::Rain(d) => d.length[1].ceil() as usize,
            _ => 0,
        }
    }
}

pub fn apply_all(chain: &[Degradation], img: &Image, rng: &mut Rng) -> Image {
    apply_all_noted(chain, img, rng).0
}

/// The chain applied, and the noise level its last `gaussian_noise` stage drew (None without
/// one). The same draws as `apply_all`, so a view is the same whichever is called.
pub fn apply_all_noted(chain: &[Degradation], img: &Image, rng: &mut Rng) -> (Image, Option<f32>) {
    let mut out = img.clone();
    let mut level = None;
    for d in chain {
        let (next, drawn) = d.apply_noted(&out, rng);
        out = next;
        level = drawn.or(level);
    }
    (out, level)
}

fn quantize8(img: &mut Image) {
    for v in &mut img.data {
        *v = (v.clamp(0.0, 1.0) * 255.0).round() / 255.0;
    }
}

// ---------------------------------------------------------------- low light

/// Under-exposure in linear light with a Poisson-Gaussian sensor (shot noise from a finite
/// photon count, read noise), a colour cast and an 8-bit result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LowLight {
    /// Exposure factor range in linear light, drawn log-uniformly.
    pub exposure: [f64; 2],
    /// Tone-curve gamma range (linear = encoded^gamma).
    pub gamma: [f64; 2],
    /// Photons collected at full scale (fewer = stronger shot noise), log-uniform.
    pub photons: [f64; 2],
    /// Read-noise standard deviation in linear units, log-uniform.
    pub read_noise: [f64; 2],
    /// Per-channel gains are drawn in [1 - cast, 1 + cast] and normalized to mean 1.
    pub cast: f64,
    pub quantize: bool,
}

impl Default for LowLight {
    fn default() -> Self {
        LowLight {
            exposure: [0.03, 0.3],
            gamma: [2.0, 2.6],
            photons: [300.0, 3000.0],
            read_noise: [0.0005, 0.005],
            cast: 0.15,
            quantize: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LowLightSample {
    pub exposure: f64,
    pub gamma: f64,
    pub photons: f64,
    pub read_noise: f64,
    pub gains: [f64; 3],
}

impl LowLight {
    pub fn sample(&self, rng: &mut Rng) -> LowLightSample {
        let mut gains = [0.0; 3];
        for g in &mut gains {
            *g = rng.range(1.0 - self.cast, 1.0 + self.cast);
        }
        let mean = gains.iter().sum::<f64>() / 3.0;
        gains.iter_mut().for_each(|g| *g /= mean);
        LowLightSample {
            exposure: rng.log_range(self.exposure[0], self.exposure[1]),
            gamma: rng.range(self.gamma[0], self.gamma[1]),
            photons: rng.log_range(self.photons[0], self.photons[1]),
            read_noise: rng.log_range(self.read_noise[0], self.read_noise[1]),
            gains,
        }
    }

    pub fn apply(&self, img: &Image, s: &LowLightSample, rng: &mut Rng) -> Image {
        let mut out = img.clone();
        for c in 0..3 {
            let k = s.exposure * s.gains[c];
            for v in out.plane_mut(c) {
                let linear = (*v as f64).clamp(0.0, 1.0).powf(s.gamma) * k;
                let shot = if s.photons.is_finite() { rng.poisson(linear * s.photons) / s.photons } else { linear };
                let noisy = shot + s.read_noise * rng.normal();
                *v = noisy.clamp(0.0, 1.0).powf(1.0 / s.gamma) as f32;
            }
        }
        if self.quantize {
            quantize8(&mut out);
        }
        out
    }
}

// ---------------------------------------------------------------- Gaussian noise

/// Additive Gaussian noise; sigma in 8-bit units (25 means 25/255), drawn uniformly from the
/// range (equal bounds give a fixed sigma). With `shot` it is a camera's Poisson-Gaussian noise
/// in the usual heteroscedastic form: the variance at a pixel of value v is sigma^2 + shot * v,
/// so bright areas are noisier than dark ones as with a real sensor; shot is drawn uniformly
/// from its range (default [0, 0]: white noise, the benchmark setting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianNoise {
    pub sigma: [f64; 2],
    /// Clip to [0, 1] as an 8-bit camera would (off for the usual unclipped benchmark setting).
    #[serde(default = "yes")]
    pub clip: bool,
    /// Signal-dependent variance per unit of pixel value, in [0, 1] units (0.01 adds a standard
    /// deviation of 0.07, 18/255, at mid grey).
    #[serde(default)]
    pub shot: [f64; 2],
    /// Round to 8 bits after clipping, as a camera frame is.
    #[serde(default)]
    pub quantize: bool,
}

fn yes() -> bool {
    true
}

impl GaussianNoise {
    /// White noise of a sigma range, clipped, not quantized (the benchmark setting).
    pub fn white(sigma: [f64; 2]) -> Self {
        GaussianNoise { sigma, clip: true, shot: [0.0, 0.0], quantize: false }
    }

    /// (sigma in 8-bit units, shot coefficient)
    pub fn sample(&self, rng: &mut Rng) -> (f64, f64) {
        let sigma = rng.range(self.sigma[0], self.sigma[1].max(self.sigma[0]));
        let shot = if self.shot[1] > 0.0 { rng.range(self.shot[0], self.shot[1].max(self.shot[0])) } else { 0.0 };
        (sigma, shot)
    }

    pub fn apply(&self, img: &Image, (sigma255, shot): (f64, f64), rng: &mut Rng) -> Image {
        let var0 = (sigma255 / 255.0).powi(2);
        let mut out = img.clone();
        for v in &mut out.data {
            let std = if shot > 0.0 { (var0 + shot * (*v as f64).max(0.0)).sqrt() } else { var0.sqrt() };
            *v += (std * rng.normal()) as f32;
        }
        if self.clip || self.quantize {
            out.clamp01();
        }
        if self.quantize {
            quantize8(&mut out);
        }
        out
    }
}

// ---------------------------------------------------------------- rain

/// Rain streaks: sparse drops smeared along one direction, screen-blended over the image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rain {
    /// Fraction of pixels that seed a drop.
    pub density: [f64; 2],
    /// Streak length in pixels.
    pub length: [f64; 2],
    /// Angle from vertical in degrees.
    pub angle: [f64; 2],
    /// Peak streak brightness.
    pub intensity: [f64; 2],
}

impl Default for Rain {
    fn default() -> Self {
        Rain { density: [0.002, 0.01], length: [8.0, 24.0], angle: [-20.0, 20.0], intensity: [0.4, 0.9] }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RainSample {
    pub density: f64,
    pub length: f64,
    pub angle_deg: f64,
    pub intensity: f64,
}

impl Rain {
    pub fn sample(&self, rng: &mut Rng) -> RainSample {
        RainSample {
            density: rng.range(self.density[0], self.density[1]),
            length: rng.range(self.length[0], self.length[1]),
            angle_deg: rng.range(self.angle[0], self.angle[1]),
            intensity: rng.range(self.intensity[0], self.intensity[1]),
        }
    }

    pub fn apply(&self, img: &Image, s: &RainSample, rng: &mut Rng) -> Image {
        let (w, h) = (img.width, img.height);
        let mut seeds = Image::new(w, h);
        for i in 0..w * h {
            if rng.uniform() < s.density {
                let v = rng.range(0.5, 1.0) as f32;
                for c in 0..3 {
                    seeds.data[c * w * h + i] = v;
                }
            }
        }
        let kernel = line_kernel(s.length, s.angle_deg.to_radians());
        let streaks = convolve(&seeds, &kernel);
        // The line kernel averages along the streak; rescale so a lone drop peaks at 1.
        let peak = kernel.values.iter().cloned().fold(0.0f32, f32::max).max(1e-6);
        let mut out = img.clone();
        for (o, st) in out.data.iter_mut().zip(&streaks.data) {
            let a = ((st / peak) * s.intensity as f32).clamp(0.0, 1.0);
            // Screen blend 1 - (1-o)(1-a), written so it never rounds below o.
            *o += a * (1.0 - *o).max(0.0);
        }
        out
    }
}

// ---------------------------------------------------------------- blur kernels

/// A square blur kernel (odd side), values summing to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub size: usize,
    pub values: Vec<f32>,
}

impl Kernel {
    fn normalized(size: usize, mut values: Vec<f32>) -> Kernel {
        let sum: f32 = values.iter().sum();
        if sum > 0.0 {
            values.iter_mut().for_each(|v| *v /= sum);
        } else {
            values[size * size / 2] = 1.0;
        }
        Kernel { size, values }
    }

    fn splat(values: &mut [f32], size: usize, x: f64, y: f64) {
        // Bilinear splat of a point at kernel coordinates (x, y), origin at the centre.
        let c = (size / 2) as f64;
        let (fx, fy) = (x + c, y + c);
        let (x0, y0) = (fx.floor(), fy.floor());
        let (ax, ay) = (fx - x0, fy - y0);
        for (dx, wx) in [(0.0, 1.0 - ax), (1.0, ax)] {
            for (dy, wy) in [(0.0, 1.0 - ay), (1.0, ay)] {
                let (px, py) = (x0 + dx, y0 + dy);
                if px >= 0.0 && py >= 0.0 && (px as usize) < size && (py as usize) < size {
                    values[py as usize * size + px as usize] += (wx * wy) as f32;
                }
            }
        }
    }

    /// Centre of mass (x, y) relative to the kernel centre.
    pub fn centroid(&self) -> (f64, f64) {
        let c = (self.size / 2) as f64;
        let (mut sx, mut sy) = (0.0, 0.0);
        for y in 0..self.size {
            for x in 0..self.size {
                let v = self.values[y * self.size + x] as f64;
                sx += v * (x as f64 - c);
                sy += v * (y as f64 - c);
            }
        }
        (sx, sy)
    }
}

fn line_kernel(length: f64, angle: f64) -> Kernel {
    let size = (length.ceil() as usize) | 1;
    let mut values = vec![0.0; size * size];
    let steps = (length * 4.0).ceil() as usize + 1;
    for i in 0..steps {
        let t = (i as f64 / (steps - 1).max(1) as f64 - 0.5) * (length - 1.0).max(0.0);
        Kernel::splat(&mut values, size, t * angle.sin(), t * angle.cos());
    }
    Kernel::normalized(size, values)
}

/// Camera shake: a random trajectory (velocity with inertia and random turns), rasterized
/// into an odd-sized kernel and centred on its centre of mass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionBlur {
    /// Kernel side range in pixels (made odd).
    pub size: [usize; 2],
}

impl Default for MotionBlur {
    fn default() -> Self {
        MotionBlur { size: [7, 21] }
    }
}

impl MotionBlur {
    pub fn sample(&self, rng: &mut Rng) -> Kernel {
        let size = (self.size[0] + rng.below(self.size[1].saturating_sub(self.size[0]) + 1)) | 1;
        let reach = (size / 2) as f64;
        let n = 64;
        let mut pts = Vec::with_capacity(n);
        let (mut x, mut y) = (0.0f64, 0.0f64);
        let dir = rng.range(0.0, std::f64::consts::TAU);
        let speed = rng.range(0.5, 1.0) * 2.0 * reach / n as f64;
        let (mut vx, mut vy) = (dir.cos() * speed, dir.sin() * speed);
        for _ in 0..n {
            pts.push((x, y));
            // Inertia plus a random kick; the kick size sets how curved the path gets.
            vx = 0.9 * vx + 0.35 * speed * rng.normal();
            vy = 0.9 * vy + 0.35 * speed * rng.normal();
            let norm = (vx * vx + vy * vy).sqrt().max(1e-9);
            vx *= speed / norm;
            vy *= speed / norm;
            x += vx;
            y += vy;
        }
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
        // Shrink the path if it would leave the kernel.
        let ext = pts.iter().map(|p| (p.0 - mx).abs().max((p.1 - my).abs())).fold(0.0, f64::max);
        let scale = if ext > reach - 0.5 { (reach - 0.5) / ext } else { 1.0 };
        let mut values = vec![0.0; size * size];
        for (px, py) in pts {
            Kernel::splat(&mut values, size, (px - mx) * scale, (py - my) * scale);
        }
        Kernel::normalized(size, values)
    }
}

/// Out-of-focus blur: a uniform disk of random radius, anti-aliased by supersampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defocus {
    /// Radius range in pixels.
    pub radius: [f64; 2],
}

impl Default for Defocus {
    fn default() -> Self {
        Defocus { radius: [1.0, 4.0] }
    }
}

impl Defocus {
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        rng.range(self.radius[0], self.radius[1].max(self.radius[0]))
    }
}

pub fn disk_kernel(radius: f64) -> Kernel {
    let size = 2 * radius.ceil() as usize + 1;
    let c = (size / 2) as f64;
    let sub = 8;
    let mut values = vec![0.0; size * size];
    for y in 0..size {
        for x in 0..size {
            let mut inside = 0;
            for sy in 0..sub {
                for sx in 0..sub {
                    let dx = x as f64 - c + (sx as f64 + 0.5) / sub as f64 - 0.5;
                    let dy = y as f64 - c + (sy as f64 + 0.5) / sub as f64 - 0.5;
                    if dx * dx + dy * dy <= radius * radius {
                        inside += 1;
                    }
                }
            }
            values[y * size + x] = inside as f32;
        }
    }
    Kernel::normalized(size, values)
}

/// 2-D convolution of every channel with replicated borders.
pub fn convolve(img: &Image, k: &Kernel) -> Image {
    let (w, h) = (img.width as isize, img.height as isize);
    let r = (k.size / 2) as isize;
    let mut out = Image::new(img.width, img.height);
    let taps: Vec<(isize, isize, f32)> = (0..k.size * k.size)
        .filter(|&i| k.values[i] != 0.0)
        .map(|i| ((i % k.size) as isize - r, (i / k.size) as isize - r, k.values[i]))
        .collect();
    for c in 0..3 {
        let src = img.plane(c);
        let dst = out.plane_mut(c);
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0f32;
                for &(dx, dy, v) in &taps {
                    // Correlation with the flipped kernel = convolution.
                    let sx = (x - dx).clamp(0, w - 1);
                    let sy = (y - dy).clamp(0, h - 1);
                    acc += v * src[(sy * w + sx) as usize];
                }
                dst[(y * w + x) as usize] = acc;
            }
        }
    }
    out
}
