//! Validation: base F vs refined R (and the degraded input) by PSNR and SSIM on fixed
//! validation images, with the runtime crate's metric definitions.

use crate::burn_ops::ParamStore;
use crate::data::ValImage;
use crate::imagebuf::Image;
use crate::model::{infer_image, pad_reflect};
use crate::onnx_run::{OnnxGraph, PriorModel};
use anyhow::{Result, anyhow};
use ptgrm::prior::GridWindow;
use ptgrm_model::export::ModelConfig;
use std::collections::BTreeMap;

/// A validation image with everything that does not change during training precomputed.
pub struct PreparedVal {
    pub val: ValImage,
    pub prior: Vec<f32>,
    /// External F's output on the reflect-padded degraded image.
    pub external_base: Option<Image>,
}

pub fn prepare(
    images: Vec<ValImage>,
    prior: Option<&mut PriorModel>,
    prior_dim: usize,
    mut external: Option<&mut OnnxGraph>,
    pad_multiple: usize,
) -> Result<Vec<PreparedVal>> {
    let mut prior = prior;
    let mut out = Vec::with_capacity(images.len());
    for v in images {
        let g = match prior.as_deref_mut() {
            Some(p) => {
                // R runs on the centre crop padded to the multiple (see load_validation, infer_image).
                let (sw, sh) = (v.prior_source.width, v.prior_source.height);
                let (cw, ch) = (v.degraded.width, v.degraded.height);
                let (pw, ph) = (cw.div_ceil(pad_multiple) * pad_multiple, ch.div_ceil(pad_multiple) * pad_multiple);
                let window = GridWindow::of_pixels((sw - cw) / 2, (sh - ch) / 2, pw, ph, sw, sh);
                let g = p.compute(&v.prior_source)?;
                p.for_crop(&g, window, false, 0)
            }
            None => vec![0.0; prior_dim],
        };
        let external_base = match external.as_deref_mut() {
            Some(f) => Some(run_external(f, &pad_reflect(&v.degraded, pad_multiple), v.noise_level)?),
            None => None,
        };
        out.push(PreparedVal { val: v, prior: g, external_base });
    }
    Ok(out)
}

/// The frozen F on one image (told its noise level when it takes one).
pub fn run_external(f: &mut OnnxGraph, img: &Image, level: Option<f32>) -> Result<Image> {
    let (shape, data) = f.run_at([1, 3, img.height, img.width], &img.data, level)?;
    if shape != [1, 3, img.height, img.width] {
        return Err(anyhow!("external base {} returned shape {shape:?} for a 1x3x{}x{} input", f.path, img.height, img.width));
    }
    Ok(Image { width: img.width, height: img.height, data })
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    pub psnr_input: f64,
    pub psnr_base: f64,
    pub psnr_refined: f64,
    pub ssim_input: f64,
    pub ssim_base: f64,
    pub ssim_refined: f64,
}

impl Scores {
    pub fn to_map(&self, prefix: &str) -> BTreeMap<String, f64> {
        BTreeMap::from([
            (format!("{prefix}psnr_input"), self.psnr_input),
            (format!("{prefix}psnr_base"), self.psnr_base),
            (format!("{prefix}psnr_refined"), self.psnr_refined),
            (format!("{prefix}ssim_input"), self.ssim_input),
            (format!("{prefix}ssim_base"), self.ssim_base),
            (format!("{prefix}ssim_refined"), self.ssim_refined),
        ])
    }
}

fn psnr_ssim(reference: &Image, test: &Image) -> Result<(f64, f64)> {
    let (a, b) = (reference.to_rgb8(), test.to_rgb8());
    let (w, h) = (reference.width, reference.height);
    let p = ptgrm::metrics::psnr_rgb8(&a, &b, w, h).map_err(|e| anyhow!("PSNR: {e}"))?;
    let s = ptgrm::metrics::ssim_rgb8(&a, &b, w, h).map_err(|e| anyhow!("SSIM: {e}"))?;
    // Identical 8-bit images: cap PSNR so means stay finite.
    Ok((p.min(100.0), s))
}

/// Per-image scores and their mean; `keep_outputs` also returns (base, refined) images.
pub fn score_all(
    store: &mut ParamStore,
    cfg: &ModelConfig,
    set: &[PreparedVal],
    keep_outputs: bool,
) -> Result<(Vec<(String, Scores)>, Scores, Vec<(Image, Image)>)> {
    let mut per = Vec::new();
    let mut outputs = Vec::new();
    let mut mean = Scores::default();
    for p in set {
        let (base, refined) = infer_image(store, cfg, &p.val.degraded, &p.prior, p.external_base.as_ref())?;
        let (pi, si) = psnr_ssim(&p.val.clean, &p.val.degraded)?;
        let (pb, sb) = psnr_ssim(&p.val.clean, &base)?;
        let (pr, sr) = psnr_ssim(&p.val.clean, &refined)?;
        let s = Scores { psnr_input: pi, psnr_base: pb, psnr_refined: pr, ssim_input: si, ssim_base: sb, ssim_refined: sr };
        mean.psnr_input += pi;
        mean.psnr_base += pb;
        mean.psnr_refined += pr;
        mean.ssim_input += si;
        mean.ssim_base += sb;
        mean.ssim_refined += sr;
        per.push((p.val.name.clone(), s));
        if keep_outputs {
            outputs.push((base, refined));
        }
    }
    let n = set.len().max(1) as f64;
    for v in [
        &mut mean.psnr_input,
        &mut mean.psnr_base,
        &mut mean.psnr_refined,
        &mut mean.ssim_input,
        &mut mean.ssim_base,
        &mut mean.ssim_refined,
    ] {
        *v /= n;
    }
    Ok((per, mean, outputs))
}

/// Squared error (8-bit levels, as the saved PNGs hold them) of base and refined outputs,
/// pooled over all images and split by the clean channel value: within [`NEAR_LEVELS`] of 0
/// or 255, where a noisy input is often clipped and a frozen denoiser is biased, and the
/// mid-tones. Why: a refiner's mean PSNR can hide a large gain on the few near-0/1 values
/// next to a small loss on the rest (docs/training-log.md, "Why R ties FFDNet at sigma 25").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueSplit {
    /// Share of all channel values that are near 0/255.
    pub near_share: f64,
    pub near_mse_base: f64,
    pub near_mse_refined: f64,
    pub mid_mse_base: f64,
    pub mid_mse_refined: f64,
    /// Correlation of R's change (refined - base) with F's error (clean - base), near 0/255
    /// and on mid-tones: about 0 where R's change carries no information about F's error and
    /// only adds variance.
    pub near_correlation: f64,
    pub mid_correlation: f64,
}

/// Clean 8-bit values at most this far from 0 or 255 count as near (0.1 of the range).
pub const NEAR_LEVELS: u8 = 25;

impl ValueSplit {
    /// `triples`: (clean, base, refined) images of equal size.
    pub fn of<'a>(triples: impl IntoIterator<Item = (&'a Image, &'a Image, &'a Image)>) -> ValueSplit {
        // count, sum of base error^2, of refined error^2, of (base error * R's change), of R's change^2
        let (mut near, mut mid) = ([0f64; 5], [0f64; 5]);
        for (clean, base, refined) in triples {
            let (c, b, r) = (clean.to_rgb8(), base.to_rgb8(), refined.to_rgb8());
            for i in 0..c.len() {
                let acc = if c[i] <= NEAR_LEVELS || c[i] >= 255 - NEAR_LEVELS { &mut near } else { &mut mid };
                let (db, dr) = (b[i] as f64 - c[i] as f64, r[i] as f64 - c[i] as f64);
                let change = r[i] as f64 - b[i] as f64;
                acc[0] += 1.0;
                acc[1] += db * db;
                acc[2] += dr * dr;
                acc[3] += -db * change;
                acc[4] += change * change;
            }
        }
        let mean = |a: [f64; 5], k: usize| if a[0] > 0.0 { a[k] / a[0] } else { 0.0 };
        let correlation = |a: [f64; 5]| if a[1] > 0.0 && a[4] > 0.0 { a[3] / (a[1] * a[4]).sqrt() } else { 0.0 };
        ValueSplit {
            near_share: near[0] / (near[0] + mid[0]).max(1.0),
            near_mse_base: mean(near, 1),
            near_mse_refined: mean(near, 2),
            mid_mse_base: mean(mid, 1),
            mid_mse_refined: mean(mid, 2),
            near_correlation: correlation(near),
            mid_correlation: correlation(mid),
        }
    }

    /// Refined against base in dB (positive = refined better) from two MSEs.
    pub fn gain_db(base: f64, refined: f64) -> f64 {
        if base > 0.0 && refined > 0.0 { 10.0 * (base / refined).log10() } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(values: &[f32]) -> Image {
        // One row of pixels whose three channels share each value.
        let n = values.len();
        let mut data = Vec::with_capacity(3 * n);
        for _ in 0..3 {
            data.extend_from_slice(values);
        }
        Image { width: n, height: 1, data }
    }

    #[test]
    fn value_split_pools_errors_by_the_clean_value() {
        // Clean: one near-black, one near-white, two mid-tones (8-bit 10, 250, 100, 150).
        let clean = image(&[10.0 / 255.0, 250.0 / 255.0, 100.0 / 255.0, 150.0 / 255.0]);
        // Base off by 8 levels on the near values and 2 on the mid-tones; refined off by 2 and 4.
        let base = image(&[18.0 / 255.0, 242.0 / 255.0, 102.0 / 255.0, 148.0 / 255.0]);
        let refined = image(&[12.0 / 255.0, 248.0 / 255.0, 104.0 / 255.0, 146.0 / 255.0]);
        let s = ValueSplit::of([(&clean, &base, &refined)]);
        assert_eq!(s.near_share, 0.5);
        assert_eq!((s.near_mse_base, s.near_mse_refined), (64.0, 4.0));
        assert_eq!((s.mid_mse_base, s.mid_mse_refined), (4.0, 16.0));
        // Near: R moves both values 6 levels towards the clean ones (F's error is -8 and +8).
        assert!((s.near_correlation - 1.0).abs() < 1e-9, "{}", s.near_correlation);
        // Mid: F is off by +2 and -2, R moves each 2 more the same way: the wrong direction.
        assert!((s.mid_correlation + 1.0).abs() < 1e-9, "{}", s.mid_correlation);
        assert!((ValueSplit::gain_db(64.0, 4.0) - 12.0412).abs() < 1e-3);
        assert!(ValueSplit::gain_db(4.0, 16.0) < 0.0);
    }
}
