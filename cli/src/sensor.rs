//! A simulated night camera: clean values v in [0,1] are decoded to linear light (v^2.2),
//! scaled by the exposure, counted as photons (Poisson), given Gaussian read noise, encoded
//! back and quantised to 8 bits. With `--cfa` the noise is that of a sensor behind an RGGB
//! colour filter array, demosaiced bilinearly, as in a real camera, whose noise therefore comes
//! in blotches a few pixels wide. Used by `ptgrm artefacts` and `ptgrm night`.

use clap::Args;
use image::RgbImage;
use ptgrm::{Error, Result};
use serde::Serialize;

/// The night camera's settings on the command line.
#[derive(Args, Clone, Copy)]
pub struct SensorArgs {
    /// Fraction of the clean image's linear light that reaches the sensor.
    #[arg(long, default_value_t = 0.03)]
    exposure: f64,
    /// Photons a full-scale pixel collects (lower: noisier).
    #[arg(long, default_value_t = 200.0)]
    photons: f64,
    /// Read noise, as a fraction of full scale.
    #[arg(long, default_value_t = 0.005)]
    read_noise: f64,
    /// Give the captures the noise of a sensor behind an RGGB colour filter array, demosaiced
    /// (a real camera's blotchy noise), instead of independent noise per pixel and colour.
    #[arg(long)]
    cfa: bool,
}

impl SensorArgs {
    pub fn sensor(&self) -> Result<Sensor> {
        if !(self.exposure > 0.0 && self.exposure <= 1.0) || !(self.photons > 0.0) || !(self.read_noise >= 0.0) {
            return Err(Error::invalid("exposure must be in (0, 1], photons positive and read noise not negative"));
        }
        Ok(Sensor { exposure: self.exposure, photons: self.photons, read_noise: self.read_noise, cfa: self.cfa })
    }
}

/// The night camera the captures come from.
#[derive(Clone, Copy, Serialize)]
pub struct Sensor {
    pub exposure: f64,
    pub photons: f64,
    pub read_noise: f64,
    /// Through an RGGB colour filter array, demosaiced bilinearly.
    pub cfa: bool,
}

impl Sensor {
    /// One capture of `clean`, seeded so runs are repeatable.
    pub fn capture(&self, clean: &RgbImage, seed: u64) -> RgbImage {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
        if self.cfa {
            return self.capture_through_cfa(clean, &mut rng);
        }
        let mut out = clean.clone();
        for v in out.iter_mut() {
            *v = encode(self.sense(*v, &mut rng));
        }
        out
    }

    /// Linear light the sensor reads for one clean 8-bit value: exposed, counted, read, clipped.
    fn sense(&self, clean: u8, rng: &mut Rng) -> f64 {
        let linear = (clean as f64 / 255.0).powf(2.2) * self.exposure;
        let counted = rng.poisson(linear * self.photons) / self.photons;
        (counted + self.read_noise * rng.normal()).clamp(0.0, 1.0)
    }

    /// The noise of a sensor behind an RGGB colour filter array (red at even rows and
    /// columns, blue at odd ones, green between), demosaiced bilinearly, on the scene's own
    /// exposed light: only the noise is interpolated, so it comes in blotches while the
    /// scene keeps its detail (a real ISP's demosaicing loses far less of it than bilinear).
    fn capture_through_cfa(&self, clean: &RgbImage, rng: &mut Rng) -> RgbImage {
        let (w, h) = (clean.width() as usize, clean.height() as usize);
        let site = |i: usize| match ((i / w) % 2, (i % w) % 2) {
            (0, 0) => 0,
            (1, 1) => 2,
            _ => 1,
        };
        let value = |i: usize, c: usize| clean.get_pixel((i % w) as u32, (i / w) as u32)[c];
        let exposed = |v: u8| (v as f64 / 255.0).powf(2.2) * self.exposure;
        // What each sensor pixel reads less the light that reached it; demosaicing is linear,
        // so interpolating this is interpolating the noisy and noiseless frames' difference.
        let raw_noise: Vec<f64> = (0..w * h).map(|i| self.sense(value(i, site(i)), rng) - exposed(value(i, site(i)))).collect();
        let noise = demosaic(&raw_noise, w, h, site);
        RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let i = y as usize * w + x as usize;
            image::Rgb(std::array::from_fn(|c| encode((exposed(value(i, c)) + noise[i][c]).clamp(0.0, 1.0))))
        })
    }
}

/// Bilinear demosaicing of a raw frame whose pixel i senses colour `site(i)`: each missing
/// colour is the mean of its samples among the eight neighbours, the direct ones weighted 2 and
/// the diagonal ones 1 (at the edge, of those inside the frame).
fn demosaic(raw: &[f64], w: usize, h: usize, site: impl Fn(usize) -> usize) -> Vec<[f64; 3]> {
    (0..w * h)
        .map(|i| {
            let (y, x) = ((i / w) as i64, (i % w) as i64);
            let (mut sum, mut weight) = ([0.0f64; 3], [0.0f64; 3]);
            for (dy, dx) in (-1i64..=1).flat_map(|dy| (-1i64..=1).map(move |dx| (dy, dx))) {
                let (yy, xx) = (y + dy, x + dx);
                if (dy, dx) == (0, 0) || yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
                    continue;
                }
                let j = yy as usize * w + xx as usize;
                let k = if dy == 0 || dx == 0 { 2.0 } else { 1.0 };
                sum[site(j)] += k * raw[j];
                weight[site(j)] += k;
            }
            std::array::from_fn(|c| if c == site(i) || weight[c] == 0.0 { raw[i] } else { sum[c] / weight[c] })
        })
        .collect()
}

/// Linear light back to an 8-bit value (the 2.2 curve).
fn encode(linear: f64) -> u8 {
    (linear.powf(1.0 / 2.2) * 255.0).round() as u8
}

/// splitmix64: small, seedable, good enough for sensor noise.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// Knuth's method for small means, the normal approximation above 30.
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            return 0.0;
        }
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-lambda).exp();
        let (mut k, mut p) = (0.0, self.uniform());
        while p > limit {
            k += 1.0;
            p *= self.uniform();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Correlation of each value's deviation from the capture's mean with its right neighbour's.
    fn right_neighbour_correlation(img: &RgbImage) -> f64 {
        let mean = img.iter().map(|&v| v as f64).sum::<f64>() / img.len() as f64;
        let d = |x: u32, y: u32, c: usize| img.get_pixel(x, y)[c] as f64 - mean;
        let (mut cross, mut power) = (0.0, 0.0);
        for y in 0..img.height() {
            for x in 0..img.width() - 1 {
                for c in 0..3 {
                    cross += d(x, y, c) * d(x + 1, y, c);
                    power += d(x, y, c) * d(x, y, c);
                }
            }
        }
        cross / power
    }

    #[test]
    fn a_cfa_capture_has_a_cameras_blotchy_noise_at_the_same_brightness() {
        let grey = RgbImage::from_pixel(96, 64, image::Rgb([200, 200, 200]));
        let plain = Sensor { exposure: 0.1, photons: 2000.0, read_noise: 0.002, cfa: false };
        let cfa = Sensor { cfa: true, ..plain };
        let (a, b) = (plain.capture(&grey, 3), cfa.capture(&grey, 3));
        assert!(right_neighbour_correlation(&a).abs() < 0.05, "plain: {}", right_neighbour_correlation(&a));
        assert!(right_neighbour_correlation(&b) > 0.3, "cfa: {}", right_neighbour_correlation(&b));
        let mean = |img: &RgbImage| img.iter().map(|&v| v as f64).sum::<f64>() / img.len() as f64;
        assert!((mean(&a) - mean(&b)).abs() < 0.5, "{} vs {}", mean(&a), mean(&b));
        // Only the noise is demosaiced: without read noise and with a practically unlimited
        // photon count a detailed scene comes back as it was, edges included.
        let quiet = Sensor { exposure: 1.0, photons: 1e12, read_noise: 0.0, cfa: true };
        let scene = RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 28) as u8, (y * 36) as u8, ((x * y * 5) % 256) as u8]));
        assert_eq!(quiet.capture(&scene, 1), scene);
    }
}
