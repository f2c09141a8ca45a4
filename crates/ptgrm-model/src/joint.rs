//! F and R as one network (the merged graph and the trainer's joint forward).
//!
//! Unfused, R reads F's full-resolution output and pools it to its own internal scale. With
//! `refiner.fused_upsampling` (both at the same internal scale s > 1) everything below full
//! resolution happens at 1/s: the image is pooled once, F's correction and R's mask and
//! residual are computed there and upsampled together in one resize, and the outputs are
//!   t = Î − I_d (I_d·gain + offset, or F's residual),  Î = I_d + t,  Ī = I_d + t·I_m + I_r.
//! Full-resolution cost is what keeps a live model from real time on a CPU (resizes, pools and
//! elementwise passes over every pixel); this form has the fewest such passes.
//! With F on the unshuffled view (`base.view = "unshuffled"`) F's correction comes back per
//! pixel through a pixel shuffle, so F can remove noise at full resolution (the pooled form
//! only ever maps the noisy input affinely); R stays at its own 1/s and only its mask and
//! residual are upsampled.

use crate::base::{BaseConfig, BaseHead, apply_base_head, apply_unshuffled_cells, base_forward, base_head, unshuffled_cells};
use crate::ops::Ops;
use crate::ptgrm::{Head, RefinerConfig, apply_mask_residual, apply_residual_only, refiner_forward, refiner_head};

/// Why `fused_upsampling` cannot apply to this pair of configurations, if it cannot.
pub fn fused_upsampling_error(base: Option<&BaseConfig>, refiner: &RefinerConfig) -> Option<String> {
    if !refiner.fused_upsampling {
        return None;
    }
    match base {
        None => Some("refiner.fused_upsampling needs a built-in F (model.base)".into()),
        // F's correction is already per pixel; only R's maps are upsampled, from R's own scale.
        Some(b) if b.is_unshuffled() && refiner.internal_scale < 2 => {
            Some(format!("refiner.fused_upsampling needs R's internal scale above 1 (it is {})", refiner.internal_scale))
        }
        Some(b) if b.is_unshuffled() => None,
        Some(b) if b.internal_scale != refiner.internal_scale || b.internal_scale < 2 => Some(format!(
            "refiner.fused_upsampling needs F and R at the same internal scale above 1 (base {}, refiner {})",
            b.internal_scale, refiner.internal_scale
        )),
        Some(_) => None,
    }
}

/// What R reads of F: Î, and in the unshuffled fused form F's per-pixel correction Î − I_d.
pub struct BaseOutput<T> {
    pub restored: T,
    pub correction: Option<T>,
}

/// Whether [`joint_base`] and [`joint_refine`] can run this pair: every form but the pooled fused
/// one, where F's and R's heads share one upsampling.
pub fn halves_separate(base: &BaseConfig, refiner: &RefinerConfig) -> bool {
    !refiner.fused_upsampling || base.is_unshuffled()
}

/// F's half of [`joint_forward`], for a trainer that keeps F frozen (runs it without gradients)
/// and trains R alone. None in the pooled fused form, where F's and R's heads share one
/// upsampling and the halves do not separate.
pub fn joint_base<O: Ops>(o: &mut O, base: &BaseConfig, refiner: &RefinerConfig, image: &O::T) -> Option<BaseOutput<O::T>> {
    if !halves_separate(base, refiner) {
        return None;
    }
    if !refiner.fused_upsampling {
        return Some(BaseOutput { restored: base_forward(o, base, image), correction: None });
    }
    let cells = unshuffled_cells(o, base, image);
    let (restored, correction) = apply_unshuffled_cells(o, base, image, &cells);
    Some(BaseOutput { restored, correction: Some(correction) })
}

/// R's half of [`joint_forward`]: the refined Ī from F's output.
pub fn joint_refine<O: Ops>(o: &mut O, refiner: &RefinerConfig, image: &O::T, f: &BaseOutput<O::T>, prior: &O::T) -> O::T {
    match &f.correction {
        None => refiner_forward(o, refiner, &f.restored, image, prior),
        Some(correction) => refine_unshuffled(o, refiner, image, &f.restored, correction, prior),
    }
}

/// (restored Î, refined Ī) for `image` `[N, 3, H, W]` and `prior` `[N, D]`.
pub fn joint_forward<O: Ops>(o: &mut O, base: &BaseConfig, refiner: &RefinerConfig, image: &O::T, prior: &O::T) -> (O::T, O::T) {
    if let Some(f) = joint_base(o, base, refiner, image) {
        let refined = joint_refine(o, refiner, image, &f, prior);
        return (f.restored, refined);
    }
    let s = base.internal_scale;
    let small = o.avg_pool(image, s);
    let f_head = base_head(o, base, &small);
    let restored_small = apply_base_head(o, base, &small, &f_head);
    let r_head = refiner_head(o, refiner, &restored_small, &small, prior);
    let (fc, rc) = (base.head_channels(), refiner.head_channels());
    let both = o.concat(&[&f_head, &r_head]);
    let up = o.upsample_bilinear(&both, fc + rc, s);

    let correction = match base.head {
        BaseHead::Residual => o.slice_channels(&up, 0, 3),
        BaseHead::Affine => {
            let gain = o.slice_channels(&up, 0, 3);
            let offset = o.slice_channels(&up, 3, 6);
            let scaled = o.mul(image, &gain);
            o.add(&scaled, &offset)
        }
    };
    let restored = o.add(image, &correction);
    let refined = match refiner.head {
        Head::MaskResidual => {
            let mask = o.slice_channels(&up, fc, fc + 1);
            let resid = o.slice_channels(&up, fc + 1, fc + 4);
            apply_mask_residual(o, image, &correction, &mask, &resid)
        }
        Head::ResidualOnly => {
            let resid = o.slice_channels(&up, fc, fc + 3);
            apply_residual_only(o, &restored, &resid)
        }
    };
    (restored, refined)
}

/// R in the fused form when F sees the unshuffled view: F's correction is already per pixel at
/// full resolution; R runs at its own 1/s on the pooled image and F's pooled output, and only
/// its mask and residual are upsampled (R's scale may differ from F's).
fn refine_unshuffled<O: Ops>(o: &mut O, refiner: &RefinerConfig, image: &O::T, restored: &O::T, correction: &O::T, prior: &O::T) -> O::T {
    let s = refiner.internal_scale;
    let small = o.avg_pool(image, s);
    let restored_small = o.avg_pool(restored, s);
    let r_head = refiner_head(o, refiner, &restored_small, &small, prior);
    // Split before upsampling: a channel split at full resolution is a copy of every pixel.
    match refiner.head {
        Head::MaskResidual => {
            let mask = o.slice_channels(&r_head, 0, 1);
            let resid = o.slice_channels(&r_head, 1, 4);
            let mask = o.upsample_bilinear(&mask, 1, s);
            let resid = o.upsample_bilinear(&resid, 3, s);
            apply_mask_residual(o, image, correction, &mask, &resid)
        }
        Head::ResidualOnly => {
            let up = o.upsample_bilinear(&r_head, refiner.head_channels(), s);
            apply_residual_only(o, restored, &up)
        }
    }
}
