//! A simulated night camera: clean values v in [0,1] are decoded to linear light (v^2.2),
//! scaled by the exposure, counted as photons (Poisson), given Gaussian read noise, encoded
//! back and quantised to 8 bits. Used by `ptgrm artefacts` and `ptgrm night`.

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
}

impl SensorArgs {
    pub fn sensor(&self) -> Result<Sensor> {
        if !(self.exposure > 0.0 && self.exposure <= 1.0) || !(self.photons > 0.0) || !(self.read_noise >= 0.0) {
            return Err(Error::invalid("exposure must be in (0, 1], photons positive and read noise not negative"));
        }
        Ok(Sensor { exposure: self.exposure, photons: self.photons, read_noise: self.read_noise })
    }
}

/// The night camera the captures come from.
#[derive(Clone, Copy, Serialize)]
pub struct Sensor {
    pub exposure: f64,
    pub photons: f64,
    pub read_noise: f64,
}

impl Sensor {
    /// One capture of `clean`, seeded so runs are repeatable.
    pub fn capture(&self, clean: &RgbImage, seed: u64) -> RgbImage {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
        let mut out = clean.clone();
        for v in out.iter_mut() {
            let linear = (*v as f64 / 255.0).powf(2.2) * self.exposure;
            let counted = rng.poisson(linear * self.photons) / self.photons;
            let read = counted + self.read_noise * rng.normal();
            *v = (read.clamp(0.0, 1.0).powf(1.0 / 2.2) * 255.0).round() as u8;
        }
        out
    }
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
