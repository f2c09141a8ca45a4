//! The networks as the trainer runs them: the model crate's forwards (written once against
//! `Ops`) executed by [`crate::burn_ops::BurnOps`], the Eq. 8 loss, and whole-image inference
//! with the engine's reflect padding.

use crate::burn_ops::{BT, BurnOps, ParamStore, tensor_from};
use crate::imagebuf::Image;
use anyhow::{Result, bail};
use burn::tensor::Tensor;
use ptgrm_model::export::ModelConfig;
use ptgrm_model::joint::joint_forward;
use ptgrm_model::ops::Ops;
use ptgrm_model::ptgrm::refiner_forward;

/// (base Î, refined Ī) for a degraded batch `[N,3,H,W]` and priors `[N,D]` on any backend of the
/// op set. `external_base` is F's output when F is a frozen external network (then `cfg.base`
/// is None).
pub fn forward_ops<O: Ops>(ops: &mut O, cfg: &ModelConfig, degraded: &O::T, prior: &O::T, external_base: Option<O::T>) -> (O::T, O::T) {
    match (&cfg.base, external_base) {
        (Some(b), None) => joint_forward(ops, b, &cfg.refiner, degraded, prior),
        (None, Some(base)) => {
            let refined = refiner_forward(ops, &cfg.refiner, &base, degraded, prior);
            (base, refined)
        }
        (Some(_), Some(_)) => panic!("both a built-in and an external base were given"),
        (None, None) => panic!("no base network: the model has no built-in F and no external output was given"),
    }
}

/// [`forward_ops`] on burn tensors.
pub fn forward(store: &mut ParamStore, cfg: &ModelConfig, degraded: &BT, prior: &BT, external_base: Option<BT>) -> (BT, BT) {
    forward_ops(&mut BurnOps::new(store), cfg, degraded, prior, external_base)
}

/// Charbonnier loss mean(sqrt((x - y)^2 + eps^2)).
pub fn charbonnier(x: Tensor<4>, y: Tensor<4>, eps: f64) -> Tensor<1> {
    let d = x - y;
    (d.clone() * d).add_scalar(eps * eps).sqrt().mean()
}

/// Reflect-pads an image so both sides are multiples of `m` (as the engine does before the
/// graphs); returns the padded image.
pub fn pad_reflect(img: &Image, m: usize) -> Image {
    let pw = img.width.div_ceil(m) * m;
    let ph = img.height.div_ceil(m) * m;
    if (pw, ph) == (img.width, img.height) {
        return img.clone();
    }
    let reflect = |i: usize, n: usize| -> usize {
        // Mirror without repeating the edge sample: n, n+1 -> n-2, n-3 ...
        let period = 2 * (n.max(2) - 1);
        let r = i % period;
        if r < n { r } else { period - r }
    };
    let mut out = Image::new(pw, ph);
    for c in 0..3 {
        for y in 0..ph {
            let sy = reflect(y, img.height).min(img.height - 1);
            for x in 0..pw {
                let sx = reflect(x, img.width).min(img.width - 1);
                *out.at_mut(c, y, x) = img.at(c, sy, sx);
            }
        }
    }
    out
}

/// Runs F and R on one whole image (inference store, no autodiff): (base, refined), cropped
/// back to the image size. `external_base` is F's output on the padded image when F is external.
pub fn infer_image(
    store: &mut ParamStore,
    cfg: &ModelConfig,
    degraded: &Image,
    prior: &[f32],
    external_base: Option<&Image>,
) -> Result<(Image, Image)> {
    if prior.len() != cfg.refiner.prior_dim {
        bail!("prior has {} values, the refiner expects {}", prior.len(), cfg.refiner.prior_dim);
    }
    let padded = pad_reflect(degraded, cfg.pad_multiple());
    let (w, h) = (padded.width, padded.height);
    let dev = store.device.clone();
    let x = tensor_from(&[1, 3, h, w], padded.data.clone(), &dev);
    let g = tensor_from(&[1, prior.len()], prior.to_vec(), &dev);
    let ext = match external_base {
        Some(b) => {
            if (b.width, b.height) != (w, h) {
                bail!("external base output is {}x{}, expected {w}x{h}", b.width, b.height);
            }
            Some(tensor_from(&[1, 3, h, w], b.data.clone(), &dev))
        }
        None => None,
    };
    let (base, refined) = forward(store, cfg, &x, &g, ext);
    let to_img = |t: &BT| Image { width: w, height: h, data: t.to_vec() }.crop(0, 0, degraded.width, degraded.height);
    Ok((to_img(&base), to_img(&refined)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let mut img = Image::new(3, 2);
        for x in 0..3 {
            for y in 0..2 {
                *img.at_mut(0, y, x) = (10 * y + x) as f32;
            }
        }
        let p = pad_reflect(&img, 4);
        assert_eq!((p.width, p.height), (4, 4));
        assert_eq!(p.at(0, 0, 3), 1.0); // x = 3 mirrors x = 1
        assert_eq!(p.at(0, 2, 0), 0.0); // y = 2 mirrors y = 0
        assert_eq!(p.at(0, 3, 2), 12.0); // y = 3 mirrors y = 1
    }
}
