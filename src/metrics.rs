//! Full-reference image quality metrics on 8-bit RGB: PSNR and SSIM, with the standard
//! definitions, so numbers reported by `ptgrm eval` compare with published ones.
//!
//! SSIM follows Wang et al. 2004 as scikit-image computes it with
//! `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//! data_range=255, channel_axis=-1)`: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
//! population (not sample) variances, the SSIM map averaged over the pixels whose window lies
//! fully inside the image, then averaged over the three channels. tests/metrics.rs checks both
//! metrics against values computed with scikit-image (tests/data/metrics-reference.json).

use crate::error::{Error, Result};

/// Peak value of 8-bit samples (the "data range" of both metrics).
const PEAK: f64 = 255.0;
const SSIM_SIGMA: f64 = 1.5;
/// Window radius: scipy's Gaussian filter truncates at 3.5 sigma, int(3.5 * 1.5 + 0.5) = 5.
const SSIM_RADIUS: usize = 5;
const SSIM_WINDOW: usize = 2 * SSIM_RADIUS + 1;
/// SSIM's stability constants, as fractions of the data range.
pub const SSIM_K1: f64 = 0.01;
pub const SSIM_K2: f64 = 0.03;

/// PSNR in dB between two interleaved RGB8 images of `width` x `height`.
/// Identical images give `f64::INFINITY`.
pub fn psnr_rgb8(reference: &[u8], test: &[u8], width: usize, height: usize) -> Result<f64> {
    check_pair(reference, test, width, height)?;
    if reference.is_empty() {
        return Err(Error::invalid("PSNR of an empty (0-pixel) image is undefined"));
    }
    let squared_error: u64 = reference
        .iter()
        .zip(test)
        .map(|(&a, &b)| {
            let d = a.abs_diff(b) as u64;
            d * d
        })
        .sum();
    if squared_error == 0 {
        return Ok(f64::INFINITY);
    }
    let mse = squared_error as f64 / reference.len() as f64;
    Ok(10.0 * (PEAK * PEAK / mse).log10())
}

/// Mean SSIM between two interleaved RGB8 images of `width` x `height` (each side >= 11).
pub fn ssim_rgb8(reference: &[u8], test: &[u8], width: usize, height: usize) -> Result<f64> {
    check_pair(reference, test, width, height)?;
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return Err(Error::invalid(format!(
            "SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window size), got {width}x{height}"
        )));
    }
    let kernel = ssim_window_taps();
    let mut total = 0.0;
    for channel in 0..3 {
        let x: Vec<f64> = reference.iter().skip(channel).step_by(3).map(|&v| v as f64).collect();
        let y: Vec<f64> = test.iter().skip(channel).step_by(3).map(|&v| v as f64).collect();
        total += ssim_plane(&x, &y, width, height, &kernel);
    }
    Ok(total / 3.0)
}

fn check_pair(reference: &[u8], test: &[u8], width: usize, height: usize) -> Result<()> {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(|| Error::invalid(format!("image size {width}x{height} overflows")))?;
    for (what, buf) in [("reference", reference), ("test", test)] {
        if buf.len() != expected {
            return Err(Error::invalid(format!("{what} image holds {} bytes, expected {expected} for {width}x{height} RGB8", buf.len())));
        }
    }
    Ok(())
}

/// SSIM's normalised 1-D Gaussian window taps (11, sigma 1.5), as scipy.ndimage.gaussian_filter
/// builds them; the trainer's SSIM loss uses the same window so it optimises what `eval` reports.
pub fn ssim_window_taps() -> [f64; SSIM_WINDOW] {
    let mut taps = [0.0; SSIM_WINDOW];
    for (i, t) in taps.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *t = (-0.5 * x * x / (SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

/// Mean of the SSIM map of one channel over the "valid" region (windows fully inside).
/// scikit-image filters the whole image with reflected borders and then crops a border of
/// the window radius, which leaves exactly these pixels, so no border handling is needed.
fn ssim_plane(x: &[f64], y: &[f64], width: usize, height: usize, kernel: &[f64; SSIM_WINDOW]) -> f64 {
    let products = |f: fn(f64, f64) -> f64| -> Vec<f64> { x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect() };
    let mu_x = filter_valid(x, width, height, kernel);
    let mu_y = filter_valid(y, width, height, kernel);
    let xx = filter_valid(&products(|a, _| a * a), width, height, kernel);
    let yy = filter_valid(&products(|_, b| b * b), width, height, kernel);
    let xy = filter_valid(&products(|a, b| a * b), width, height, kernel);
    let c1 = (SSIM_K1 * PEAK).powi(2);
    let c2 = (SSIM_K2 * PEAK).powi(2);
    let mut sum = 0.0;
    for i in 0..mu_x.len() {
        let (ux, uy) = (mu_x[i], mu_y[i]);
        let var_x = xx[i] - ux * ux;
        let var_y = yy[i] - uy * uy;
        let cov = xy[i] - ux * uy;
        let numerator = (2.0 * ux * uy + c1) * (2.0 * cov + c2);
        let denominator = (ux * ux + uy * uy + c1) * (var_x + var_y + c2);
        sum += numerator / denominator;
    }
    sum / mu_x.len() as f64
}

/// Separable Gaussian filter keeping only outputs whose window lies inside the plane:
/// returns (width - 10) x (height - 10) values, row-major.
fn filter_valid(plane: &[f64], width: usize, height: usize, kernel: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let out_w = width - 2 * SSIM_RADIUS;
    let out_h = height - 2 * SSIM_RADIUS;
    let mut rows = vec![0.0; out_w * height];
    for r in 0..height {
        let src = &plane[r * width..(r + 1) * width];
        for c in 0..out_w {
            rows[r * out_w + c] = kernel.iter().zip(&src[c..c + SSIM_WINDOW]).map(|(k, v)| k * v).sum();
        }
    }
    let mut out = vec![0.0; out_w * out_h];
    for r in 0..out_h {
        for c in 0..out_w {
            out[r * out_w + c] = kernel.iter().enumerate().map(|(k, t)| t * rows[(r + k) * out_w + c]).sum();
        }
    }
    out
}
