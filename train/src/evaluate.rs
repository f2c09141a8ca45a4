//! Validation: base F vs refined R (and the degraded input) by PSNR and SSIM on fixed
//! validation images, with the runtime crate's metric definitions.

use crate::burn_ops::ParamStore;
use crate::data::ValImage;
use crate::imagebuf::Image;
use crate::model::{infer_image, pad_reflect};
use crate::onnx_run::{OnnxGraph, PriorModel};
use anyhow::{anyhow, Result};
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
            Some(p) => p.compute(&v.prior_source)?,
            None => vec![0.0; prior_dim],
        };
        let external_base = match external.as_deref_mut() {
            Some(f) => Some(run_external(f, &pad_reflect(&v.degraded, pad_multiple))?),
            None => None,
        };
        out.push(PreparedVal { val: v, prior: g, external_base });
    }
    Ok(out)
}

pub fn run_external(f: &mut OnnxGraph, img: &Image) -> Result<Image> {
    let (shape, data) = f.run([1, 3, img.height, img.width], &img.data)?;
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
