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
                (d.apply(img, &drawn, rng), Some(drawn.sigma as f32))
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
    /// Probability that a capture's noise is that of a sensor behind an RGGB colour filter
    /// array (one colour per pixel, the 2x2 pattern at a random offset), demosaiced bilinearly
    /// in linear light, as a real camera's is; the scene itself keeps its detail (only the
    /// noise goes through the demosaicing). Why: demosaicing spreads each sensor pixel's
    /// noise over its neighbours, so a camera's noise comes in coloured blotches two to three
    /// pixels wide, not as the independent per-pixel noise of the plain model; a model that
    /// saw only the latter leaves the former in. Default 0: the plain model, the same draws
    /// as before.
    pub mosaic: f64,
    /// Probability that a capture's chroma is subsampled 4:2:0 after the camera curve (BT.601
    /// Cb and Cr averaged over 2x2 blocks and repeated), as a webcam's YUV or MJPEG frames are
    /// before `videoconvert` turns them into RGB. Default 0.
    pub chroma_subsample: f64,
    /// Probability that a capture is well exposed (exposure 1, no colour cast: what a camera's
    /// auto-exposure and white balance deliver in a lit room), so that only its noise is to be
    /// removed. Why: a model that saw only under-exposed captures brightens whatever it gets; a
    /// live filter also sees lit scenes and should pass them nearly as they are. Default 0.
    pub well_exposed: f64,
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
            mosaic: 0.0,
            chroma_subsample: 0.0,
            well_exposed: 0.0,
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
    /// Where the colour filter array's red site lies in the 2x2 pattern, (row, column), when
    /// the capture is sensed through one; None for the plain per-channel model.
    pub mosaic: Option<(usize, usize)>,
    pub chroma_subsample: bool,
}

impl LowLight {
    pub fn sample(&self, rng: &mut Rng) -> LowLightSample {
        let mut gains = [0.0; 3];
        for g in &mut gains {
            *g = rng.range(1.0 - self.cast, 1.0 + self.cast);
        }
        let mean = gains.iter().sum::<f64>() / 3.0;
        gains.iter_mut().for_each(|g| *g /= mean);
        let mut sample = LowLightSample {
            exposure: rng.log_range(self.exposure[0], self.exposure[1]),
            gamma: rng.range(self.gamma[0], self.gamma[1]),
            photons: rng.log_range(self.photons[0], self.photons[1]),
            read_noise: rng.log_range(self.read_noise[0], self.read_noise[1]),
            gains,
            // Drawn only when asked for, so recipes without them keep their draws.
            mosaic: (self.mosaic > 0.0 && rng.uniform() < self.mosaic).then(|| (rng.below(2), rng.below(2))),
            chroma_subsample: self.chroma_subsample > 0.0 && rng.uniform() < self.chroma_subsample,
        };
        if self.well_exposed > 0.0 && rng.uniform() < self.well_exposed {
            sample.exposure = 1.0;
            sample.gains = [1.0; 3];
        }
        sample
    }

    pub fn apply(&self, img: &Image, s: &LowLightSample, rng: &mut Rng) -> Image {
        let mut out = match s.mosaic {
            None => {
                let mut out = img.clone();
                for c in 0..3 {
                    for v in out.plane_mut(c) {
                        *v = s.sensed(*v, c, rng).powf(1.0 / s.gamma) as f32;
                    }
                }
                out
            }
            Some(red_site) => {
                // The noise is demosaiced, the scene is not: what the filter array does to the
                // noise (spreads it over neighbours) every camera shares, while what it does to
                // detail depends on the camera's demosaicing, and bilinear's blur and fringes
                // (5-9 levels RMS on the validation photos) are far worse than a real ISP's.
                let noise = demosaic_bilinear(&s.cfa_noise(img, red_site, rng), img.width, img.height, red_site);
                let mut out = img.clone();
                for c in 0..3 {
                    for (v, n) in out.plane_mut(c).iter_mut().zip(noise.plane(c)) {
                        *v = (s.exposed(*v, c) + *n as f64).clamp(0.0, 1.0).powf(1.0 / s.gamma) as f32;
                    }
                }
                out
            }
        };
        if s.chroma_subsample {
            subsample_chroma_420(&mut out);
        }
        if self.quantize {
            quantize8(&mut out);
        }
        out
    }
}

impl LowLightSample {
    /// One channel value of the clean (encoded) image as the sensor reads it in linear light:
    /// exposed, counted as photons, read noise added, clipped.
    fn sensed(&self, clean: f32, c: usize, rng: &mut Rng) -> f64 {
        let linear = self.exposed(clean, c);
        let shot = if self.photons.is_finite() { rng.poisson(linear * self.photons) / self.photons } else { linear };
        (shot + self.read_noise * rng.normal()).clamp(0.0, 1.0)
    }

    /// The light one channel value of the clean (encoded) image puts on the sensor, noiseless.
    fn exposed(&self, clean: f32, c: usize) -> f64 {
        (clean as f64).clamp(0.0, 1.0).powf(self.gamma) * (self.exposure * self.gains[c])
    }

    /// The noise of a sensor behind an RGGB colour filter array, in linear light: at each
    /// pixel, what the sensor reads of its filter's channel less the light that reached it.
    /// Demosaicing is linear, so interpolating this field is the same as interpolating the
    /// noisy and the noiseless raw frames and taking their difference.
    fn cfa_noise(&self, img: &Image, red_site: (usize, usize), rng: &mut Rng) -> Vec<f32> {
        let w = img.width;
        (0..w * img.height)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                let c = cfa_channel(y, x, red_site);
                let clean = img.at(c, y, x);
                (self.sensed(clean, c, rng) - self.exposed(clean, c)) as f32
            })
            .collect()
    }
}

/// The colour (0 R, 1 G, 2 B) an RGGB filter array passes at (y, x), its red site at
/// `red_site` within the 2x2 pattern.
pub fn cfa_channel(y: usize, x: usize, red_site: (usize, usize)) -> usize {
    let (row, col) = ((y + 2 - red_site.0) % 2, (x + 2 - red_site.1) % 2);
    match (row, col) {
        (0, 0) => 0,
        (1, 1) => 2,
        _ => 1,
    }
}

/// Bilinear demosaicing as a normalised convolution: each missing colour is the weighted mean
/// of the same colour's samples among the eight neighbours, weights 2 for the four direct and
/// 1 for the four diagonal ones. In the interior that is the textbook bilinear interpolation
/// (green from its four direct neighbours, red and blue from two or four); at the frame's edge
/// the neighbours outside are left out of the mean.
pub fn demosaic_bilinear(raw: &[f32], w: usize, h: usize, red_site: (usize, usize)) -> Image {
    let mut out = Image::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let own = cfa_channel(y, x, red_site);
            let mut sum = [0.0f32; 3];
            let mut weight = [0.0f32; 3];
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                    if (dy, dx) == (0, 0) || yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
                        continue;
                    }
                    let c = cfa_channel(yy as usize, xx as usize, red_site);
                    let k = if dy == 0 || dx == 0 { 2.0 } else { 1.0 };
                    sum[c] += k * raw[yy as usize * w + xx as usize];
                    weight[c] += k;
                }
            }
            for c in 0..3 {
                *out.at_mut(c, y, x) = if c == own {
                    raw[y * w + x]
                } else if weight[c] > 0.0 {
                    sum[c] / weight[c]
                } else {
                    raw[y * w + x]
                };
            }
        }
    }
    out
}

/// 4:2:0 chroma in place: BT.601 Cb and Cr averaged over each 2x2 block (what is there of it
/// at an odd edge) and repeated over it, luma kept per pixel, then back to RGB, clipped.
pub fn subsample_chroma_420(img: &mut Image) {
    let (w, h) = (img.width, img.height);
    let luma = |r: f32, g: f32, b: f32| 0.299 * r + 0.587 * g + 0.114 * b;
    for by in (0..h).step_by(2) {
        for bx in (0..w).step_by(2) {
            let block =
                || [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().map(move |(dy, dx)| (by + dy, bx + dx)).filter(|&(y, x)| y < h && x < w);
            let (mut cb, mut cr, mut n) = (0.0f32, 0.0f32, 0.0f32);
            for (y, x) in block() {
                let (r, g, b) = (img.at(0, y, x), img.at(1, y, x), img.at(2, y, x));
                let yv = luma(r, g, b);
                cb += 0.564 * (b - yv);
                cr += 0.713 * (r - yv);
                n += 1.0;
            }
            let (cb, cr) = (cb / n, cr / n);
            for (y, x) in block() {
                let yv = luma(img.at(0, y, x), img.at(1, y, x), img.at(2, y, x));
                let r = yv + cr / 0.713;
                let b = yv + cb / 0.564;
                let g = (yv - 0.299 * r - 0.114 * b) / 0.587;
                for (c, v) in [r, g, b].into_iter().enumerate() {
                    *img.at_mut(c, y, x) = v.clamp(0.0, 1.0);
                }
            }
        }
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
    /// Probability that the noise is a sensor's behind an RGGB colour filter array, demosaiced
    /// bilinearly (as `low_light`'s `mosaic`: blotches two to three pixels wide, the scene's
    /// detail kept). Default 0.
    #[serde(default)]
    pub mosaic: f64,
    /// Probability that the noisy frame's chroma is subsampled 4:2:0 (as `low_light`'s; the
    /// frame is clipped to [0, 1] then). Default 0.
    #[serde(default)]
    pub chroma_subsample: f64,
}

/// One draw of [`GaussianNoise`].
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSample {
    /// In 8-bit units.
    pub sigma: f64,
    pub shot: f64,
    /// The colour filter array's red site in its 2x2 pattern, when the noise is demosaiced.
    pub mosaic: Option<(usize, usize)>,
    pub chroma_subsample: bool,
}

fn yes() -> bool {
    true
}

impl GaussianNoise {
    /// White noise of a sigma range, clipped, not quantized (the benchmark setting).
    pub fn white(sigma: [f64; 2]) -> Self {
        GaussianNoise { sigma, clip: true, shot: [0.0, 0.0], quantize: false, mosaic: 0.0, chroma_subsample: 0.0 }
    }

    pub fn sample(&self, rng: &mut Rng) -> NoiseSample {
        let sigma = rng.range(self.sigma[0], self.sigma[1].max(self.sigma[0]));
        let shot = if self.shot[1] > 0.0 { rng.range(self.shot[0], self.shot[1].max(self.shot[0])) } else { 0.0 };
        // Drawn only when asked for, so recipes without them keep their draws.
        let mosaic = (self.mosaic > 0.0 && rng.uniform() < self.mosaic).then(|| (rng.below(2), rng.below(2)));
        let chroma_subsample = self.chroma_subsample > 0.0 && rng.uniform() < self.chroma_subsample;
        NoiseSample { sigma, shot, mosaic, chroma_subsample }
    }

    pub fn apply(&self, img: &Image, s: &NoiseSample, rng: &mut Rng) -> Image {
        let var0 = (s.sigma / 255.0).powi(2);
        let std = |v: f32| if s.shot > 0.0 { (var0 + s.shot * (v as f64).max(0.0)).sqrt() } else { var0.sqrt() };
        let mut out = img.clone();
        match s.mosaic {
            None => {
                for v in &mut out.data {
                    *v += (std(*v) * rng.normal()) as f32;
                }
            }
            Some(red_site) => {
                let (w, h) = (img.width, img.height);
                let raw: Vec<f32> = (0..w * h)
                    .map(|i| {
                        let c = cfa_channel(i / w, i % w, red_site);
                        (std(img.at(c, i / w, i % w)) * rng.normal()) as f32
                    })
                    .collect();
                let noise = demosaic_bilinear(&raw, w, h, red_site);
                out.data.iter_mut().zip(&noise.data).for_each(|(v, n)| *v += n);
            }
        }
        if self.clip || self.quantize || s.chroma_subsample {
            out.clamp01();
        }
        if s.chroma_subsample {
            subsample_chroma_420(&mut out);
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
