//! The training step on LibTorch: the model crate's forward through [`TchOps`], LibTorch's
//! autograd, and the same Adam (with global-norm clipping) as [`crate::adam::Adam`], written
//! with in-place updates under `no_grad`.

use crate::backend::{Backend, LossConfig, OptimizerState, StepBatch, StepResult, Trainer};
use crate::model::forward_ops;
use crate::tch_ops::{TT, TchOps, TchStore, tensor, values};
use ptgrm_model::export::ModelConfig;
use ptgrm_model::joint::{joint_base, joint_refine};
use ptgrm_model::params::{ParamMap, ParamValue};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Charbonnier loss mean(sqrt((x - y)^2 + eps^2)); with `near_clip_weight` != 1 a weighted
/// mean in which each channel value whose target lies within [`NEAR_CLIP`] of 0 or 1 counts
/// `near_clip_weight` times (see `TrainConfig::near_clip_weight` for why).
fn charbonnier(x: &Tensor, y: &Tensor, eps: f64, near_clip_weight: f64) -> Tensor {
    let d = x - y;
    let c = (&d * &d + eps * eps).sqrt();
    if near_clip_weight == 1.0 {
        return c.mean(Kind::Float);
    }
    let near = y.le(NEAR_CLIP).logical_or(&y.ge(1.0 - NEAR_CLIP)).to_kind(Kind::Float);
    let w = near * (near_clip_weight - 1.0) + 1.0;
    (&c * &w).sum(Kind::Float) / w.sum(Kind::Float).clamp_min(1e-12)
}

/// How close to 0 or 1 a clean channel value is for `near_clip_weight` to apply: at the
/// noise levels trained (sigma 15-50 of 255) the noisy input is clipped there often.
const NEAR_CLIP: f64 = 0.1;

/// 1 - mean SSIM of `x` against `y` (NCHW, data range 1), computed as `ptgrm eval` does
/// (src/metrics.rs): per channel, 11x11 Gaussian window, population variances, only windows
/// that lie inside the image. Charbonnier alone rewards the mean; this term rewards keeping
/// local contrast and structure, what the low-light SSIM targets measure.
fn ssim_loss(x: &Tensor, y: &Tensor) -> Tensor {
    let taps = ptgrm::metrics::ssim_window_taps();
    let k = taps.len() as i64;
    // Separable Gaussian as a weighted sum of shifted views: LibTorch's CPU depthwise
    // convolution with a 1 x 11 kernel made this term half of a low-light step on 512 crops.
    let pass = |t: &Tensor, dim: i64| {
        let out = t.size()[dim as usize] - k + 1;
        let mut sum = t.narrow(dim, 0, out) * taps[0];
        for (i, &tap) in taps.iter().enumerate().skip(1) {
            sum = sum + t.narrow(dim, i as i64, out) * tap;
        }
        sum
    };
    let blur = |t: &Tensor| pass(&pass(t, 3), 2);
    let (c1, c2) = (ptgrm::metrics::SSIM_K1.powi(2), ptgrm::metrics::SSIM_K2.powi(2));
    let (mu_x, mu_y) = (blur(x), blur(y));
    let var_x = blur(&(x * x)) - &mu_x * &mu_x;
    let var_y = blur(&(y * y)) - &mu_y * &mu_y;
    let cov = blur(&(x * y)) - &mu_x * &mu_y;
    let numerator = (&mu_x * &mu_y * 2.0 + c1) * (cov * 2.0 + c2);
    let denominator = (&mu_x * &mu_x + &mu_y * &mu_y + c1) * (var_x + var_y + c2);
    (numerator / denominator).mean(Kind::Float).neg() + 1.0
}

/// The period of [`grid_loss`]: F's 2x2 space-to-depth cells and its 1/4-resolution level.
const GRID_PERIOD: i64 = 4;

/// Mean over crops and channels of the error's P x P phase-mean variance over what
/// independent error gives (sigma^2 P^2 / N): `ptgrm artefacts`'s one-frame grid score
/// (cli/src/grid_pattern.rs) on `x - y` instead of on a flat frame's output, about 1 for error
/// without a phase-locked part. The denominator carries no gradient, so the term can only be
/// lowered by evening out the phase means, not by adding error. Each crop is cut to the
/// top-left square whose sides are multiples of P, as the score does.
fn grid_loss(x: &Tensor, y: &Tensor) -> Tensor {
    let p = GRID_PERIOD;
    let [n, c, h, w] = x.size()[..] else { panic!("grid_loss needs NCHW tensors, got {:?}", x.size()) };
    let (h, w) = (h / p * p, w / p * p);
    let e = (x - y).narrow(2, 0, h).narrow(3, 0, w);
    let phase_means = e.reshape([n, c, h / p, p, w / p, p]).mean_dim(&[2i64, 4][..], false, Kind::Float);
    let deviations = &phase_means - phase_means.mean_dim(&[2i64, 3][..], true, Kind::Float);
    let var_means = deviations.square().mean_dim(&[2i64, 3][..], false, Kind::Float);
    let from_noise = tch::no_grad(|| e.var_dim(&[2i64, 3][..], false, false) * ((p * p) as f64 / (h * w) as f64));
    (var_means / from_noise.clamp_min(1e-12)).mean(Kind::Float)
}

/// One output's loss: Charbonnier, plus the weighted SSIM and grid terms when the recipe asks
/// for them.
fn output_loss(x: &Tensor, y: &Tensor, lc: &LossConfig) -> Tensor {
    let mut l = charbonnier(x, y, lc.charbonnier_eps, lc.near_clip_weight);
    if lc.ssim_weight > 0.0 {
        l = l + ssim_loss(x, y) * lc.ssim_weight;
    }
    if lc.grid_weight > 0.0 {
        l = l + grid_loss(x, y) * lc.grid_weight;
    }
    l
}

pub struct TchTrainer {
    cfg: ModelConfig,
    loss: LossConfig,
    store: TchStore,
    t: u64,
    m: BTreeMap<String, Tensor>,
    v: BTreeMap<String, Tensor>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl TchTrainer {
    pub fn new(
        cfg: &ModelConfig,
        loss: LossConfig,
        seed: u64,
        params: &ParamMap,
        opt: Option<&OptimizerState>,
        device: Device,
    ) -> TchTrainer {
        let mut store = TchStore::new(seed, true, device);
        store.load_param_map(params);
        let (mut m, mut v) = (BTreeMap::new(), BTreeMap::new());
        let mut t = 0;
        if let Some(o) = opt {
            for (src, dst) in [(&o.m, &mut m), (&o.v, &mut v)] {
                for (k, val) in src {
                    // Moments are stored flat; give them the parameter's shape.
                    let shape = params.get(k).map(|p| p.shape.clone()).unwrap_or_else(|| vec![val.data.len()]);
                    dst.insert(k.clone(), tensor(&shape, &val.data).to_device(device));
                }
            }
            t = o.t;
        }
        TchTrainer { cfg: cfg.clone(), loss, store, t, m, v }
    }

    /// Keep every parameter whose name starts with none of `prefixes` out of autograd (and so
    /// out of Adam, which updates only what received a gradient); empty: train all.
    pub fn train_only(&mut self, prefixes: &[String]) {
        if prefixes.is_empty() {
            return;
        }
        for (name, t) in self.store.tensors.iter_mut() {
            if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                *t = t.detach();
            }
        }
    }

    /// Adam (bias-corrected, eps scaled as in `crate::adam`) on every parameter that received a
    /// gradient; returns the global gradient norm before clipping.
    fn adam(&mut self, lr: f64, clip: f64) -> f64 {
        tch::no_grad(|| {
            let found: Vec<(String, Tensor)> = self
                .store
                .tensors
                .iter()
                .filter_map(|(k, p)| {
                    let g = p.grad();
                    g.defined().then(|| (k.clone(), g))
                })
                .collect();
            if found.is_empty() {
                return 0.0;
            }
            let sq: Vec<Tensor> = found.iter().map(|(_, g)| g.square().sum(Kind::Float).view([1])).collect();
            let norm = Tensor::cat(&sq, 0).sum(Kind::Float).double_value(&[]).sqrt();
            let scale = if clip > 0.0 && norm > clip { clip / norm } else { 1.0 };
            self.t += 1;
            let bc1 = 1.0 - BETA1.powi(self.t as i32);
            let bc2 = 1.0 - BETA2.powi(self.t as i32);
            let step_size = lr * bc2.sqrt() / bc1;
            for (name, g) in found {
                let g = if scale != 1.0 { &g * scale } else { g };
                let m = match self.m.remove(&name) {
                    Some(m) => m * BETA1 + &g * (1.0 - BETA1),
                    None => &g * (1.0 - BETA1),
                };
                let v = match self.v.remove(&name) {
                    Some(v) => v * BETA2 + &g * &g * (1.0 - BETA2),
                    None => &g * &g * (1.0 - BETA2),
                };
                let update = &m / (v.sqrt() + EPS * bc2.sqrt()) * step_size;
                let p = self.store.tensors.get_mut(&name).expect("parameter with a gradient");
                let _ = p.f_sub_(&update).expect("in-place parameter update");
                p.zero_grad();
                self.m.insert(name.clone(), m);
                self.v.insert(name, v);
            }
            norm
        })
    }
}

impl Trainer for TchTrainer {
    fn backend(&self) -> Backend {
        if self.store.device == Device::Cpu { Backend::Tch } else { Backend::TchCuda }
    }

    fn step(&mut self, b: &StepBatch, lr: f64) -> StepResult {
        let (n, s, lc, dev) = (b.n, b.side, self.loss, self.store.device);
        let dim = b.priors.len() / n;
        let x = TT(tensor(&[n, 3, s, s], b.degraded).to_device(dev));
        let y = tensor(&[n, 3, s, s], b.clean).to_device(dev);
        let g = TT(tensor(&[n, dim], b.priors).to_device(dev));
        let ext = b.external_base.map(|v| TT(tensor(&[n, 3, s, s], v).to_device(dev)));
        let mut ops = TchOps { store: &mut self.store };
        let (loss, loss_base, loss_ref) = if lc.base_alone() {
            let base = ptgrm_model::base::base_forward(&mut ops, self.cfg.base.as_ref().expect("built-in F"), &x);
            let lb = output_loss(&base.0, &y, &lc);
            (lb.shallow_clone(), lb.shallow_clone(), lb.zeros_like())
        } else if lc.freeze_base {
            let (base_cfg, refiner) = (self.cfg.base.as_ref().expect("built-in F"), &self.cfg.refiner);
            let f = tch::no_grad(|| joint_base(&mut ops, base_cfg, refiner, &x))
                .expect("train.freeze_base with the pooled fused form (refused when the run starts)");
            let refined = joint_refine(&mut ops, refiner, &x, &f, &g);
            let lr_ = output_loss(&refined.0, &y, &lc);
            let lb = tch::no_grad(|| output_loss(&f.restored.0, &y, &lc));
            (lr_.shallow_clone(), lb, lr_)
        } else {
            let (base, refined) = forward_ops(&mut ops, &self.cfg, &x, &g, ext);
            let lb = output_loss(&base.0, &y, &lc);
            let lr_ = output_loss(&refined.0, &y, &lc);
            let l = if lc.builtin { &lb + &lr_ * lc.lambda1 } else { lr_.shallow_clone() };
            (l, lb, lr_)
        };
        let scalar = |t: &Tensor| t.detach().double_value(&[]);
        let mut out = StepResult {
            loss: scalar(&loss),
            loss_base: scalar(&loss_base),
            loss_refined: scalar(&loss_ref),
            grad_norm: 0.0,
            applied: false,
        };
        if out.loss.is_finite() {
            loss.backward();
            out.grad_norm = self.adam(lr, lc.grad_clip);
            out.applied = true;
        }
        out
    }

    fn params(&self) -> ParamMap {
        self.store.to_param_map()
    }

    fn optimizer_state(&self) -> OptimizerState {
        let flat = |map: &BTreeMap<String, Tensor>| -> ParamMap {
            map.iter()
                .map(|(k, t)| {
                    let data = values(t);
                    (k.clone(), ParamValue { shape: vec![data.len()], data })
                })
                .collect()
        };
        OptimizerState { t: self.t, m: flat(&self.m), v: flat(&self.v) }
    }

    fn adam_steps(&self) -> u64 {
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss must optimise the SSIM `ptgrm eval` reports: on an 8-bit pair (a smooth
    /// pattern and a noisy, dimmed copy) 1 - loss equals src/metrics.rs's SSIM.
    #[test]
    fn ssim_loss_matches_the_reported_ssim() {
        let (w, h) = (37usize, 29usize);
        let mut clean = vec![0u8; w * h * 3];
        let mut noisy = vec![0u8; w * h * 3];
        let mut state = 12345u32;
        for i in 0..w * h * 3 {
            let (px, c) = (i / 3, i % 3);
            let (x, y) = ((px % w) as f32, (px / w) as f32);
            let v = 128.0 + 90.0 * ((x * 0.3 + c as f32).sin() * (y * 0.2).cos());
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            let noise = (state >> 24) as f32 - 128.0;
            clean[i] = v.round().clamp(0.0, 255.0) as u8;
            noisy[i] = (0.7 * v + 0.25 * noise).round().clamp(0.0, 255.0) as u8;
        }
        let expected = ptgrm::metrics::ssim_rgb8(&clean, &noisy, w, h).unwrap();
        let planar = |img: &[u8]| -> Tensor {
            let mut v = vec![0f32; w * h * 3];
            for (i, &b) in img.iter().enumerate() {
                v[(i % 3) * w * h + i / 3] = b as f32 / 255.0;
            }
            tensor(&[1, 3, h, w], &v)
        };
        let loss = ssim_loss(&planar(&clean), &planar(&noisy)).double_value(&[]);
        assert!((1.0 - loss - expected).abs() < 1e-4, "1 - loss {} vs eval SSIM {expected}", 1.0 - loss);
        assert!(expected < 0.9, "the pair must differ for the check to mean anything: SSIM {expected}");
        let same = ssim_loss(&planar(&clean), &planar(&clean)).double_value(&[]);
        assert!(same.abs() < 1e-5, "identical images: loss {same}");
    }

    /// `grid_loss`: error that is independent noise scores about 1 (what the grid score reads
    /// for no pattern), and the same noise with a faint period-4 checkerboard (a fifth of its
    /// sigma, invisible per pixel) stands well out; the score ignores the error's scale.
    #[test]
    fn grid_loss_reads_about_one_for_noise_and_finds_a_faint_period_four_pattern() {
        let (n, side) = (4usize, 128usize);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32
        };
        // Sum of 4 uniforms: near-Gaussian, sigma 0.02 around 0.
        let noise: Vec<f32> =
            (0..n * 3 * side * side).map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 0.02 * 3f32.sqrt()).collect();
        let y = Tensor::zeros([n as i64, 3, side as i64, side as i64], (Kind::Float, Device::Cpu));
        let score = |v: &[f32]| grid_loss(&tensor(&[n, 3, side, side], v), &y).double_value(&[]);
        let plain = score(&noise);
        assert!((0.6..1.4).contains(&plain), "independent noise: {plain}");
        let scaled: Vec<f32> = noise.iter().map(|v| v * 10.0).collect();
        assert!((score(&scaled) - plain).abs() < 1e-3 * plain, "the score must not depend on the error's scale");
        let patterned: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (x, yy) = (i % side, i / side % side);
                v + if (x % 4 < 2) ^ (yy % 4 < 2) { 0.004 } else { -0.004 }
            })
            .collect();
        let found = score(&patterned);
        assert!(found > 3.0 * plain, "a 0.2-sigma period-4 checkerboard: {found} against {plain}");
    }

    /// `near_clip_weight`: a target of 4 values, two near 0/1 with error 0.4 and two mid-tones
    /// with error 0.1; weight w gives (2w * 0.4 + 2 * 0.1) / (2w + 2), and 1 the plain mean.
    #[test]
    fn near_clip_weight_weighs_values_by_their_target() {
        let y = tensor(&[1, 1, 1, 4], &[0.05, 0.97, 0.5, 0.3]);
        let x = tensor(&[1, 1, 1, 4], &[0.45, 0.57, 0.6, 0.2]);
        let at = |w: f64| charbonnier(&x, &y, 0.0, w).double_value(&[]);
        for (w, want) in [(1.0, 0.25), (0.25, (0.5 * 0.4 + 0.2) / 2.5), (4.0, (3.2 + 0.2) / 10.0)] {
            assert!((at(w) - want).abs() < 1e-6, "weight {w}: {} vs {want}", at(w));
        }
    }

    /// `train.freeze_base`: a step moves R and leaves every parameter of F exactly as it was
    /// (the trained F a fine-tune relies on); the same step without it moves F as well, and
    /// with `train.trainable` only the listed part.
    #[test]
    fn freeze_base_moves_r_and_leaves_f_exactly_as_it_was() {
        use ptgrm_model::base::{BaseBlock, BaseConfig, BaseHead, BaseView};
        use ptgrm_model::export::init_params;
        use ptgrm_model::ptgrm::RefinerConfig;
        let base = BaseConfig {
            block: BaseBlock::Res,
            head: BaseHead::Residual,
            internal_scale: 2,
            view: BaseView::Unshuffled,
            width: 8,
            zero_init_ending: false,
            ..Default::default()
        };
        let refiner = RefinerConfig { internal_scale: 8, fused_upsampling: true, mask_logit_offset: 4.0, ..RefinerConfig::paper(16) };
        let cfg = ModelConfig { base: Some(base), refiner };
        let params = init_params(&cfg, 7).unwrap();
        let (n, side) = (2usize, 64usize);
        let px = n * 3 * side * side;
        let clean: Vec<f32> = (0..px).map(|i| ((i * 37 % 101) as f32) / 100.0).collect();
        let degraded: Vec<f32> = clean.iter().enumerate().map(|(i, v)| (v * 0.8 + ((i * 13 % 7) as f32) * 0.02).min(1.0)).collect();
        let priors: Vec<f32> = (0..n * cfg.refiner.prior_dim).map(|i| ((i % 11) as f32) / 11.0).collect();
        let batch = StepBatch { n, side, degraded: &degraded, clean: &clean, priors: &priors, external_base: None };
        let after = |freeze_base: bool, trainable: &[String]| -> ParamMap {
            let loss = LossConfig {
                builtin: true,
                lambda1: 1.0,
                charbonnier_eps: 1e-3,
                ssim_weight: 0.0,
                near_clip_weight: 1.0,
                grid_weight: 0.0,
                grad_clip: 0.0,
                freeze_base,
            };
            let mut t = TchTrainer::new(&cfg, loss, 7, &params, None, Device::Cpu);
            t.train_only(trainable);
            assert!(t.step(&batch, 1e-3).applied);
            t.params()
        };
        let moved =
            |p: &ParamMap, prefix: &str| p.iter().filter(|(k, v)| k.starts_with(prefix) && v.data != params[k.as_str()].data).count();
        let frozen = after(true, &[]);
        assert_eq!(moved(&frozen, "base."), 0, "F changed under freeze_base");
        assert!(moved(&frozen, "refiner.") > 10, "R did not train under freeze_base");
        let joint = after(false, &[]);
        assert!(moved(&joint, "base.") > 10, "F must train without freeze_base (else the check above means nothing)");
        // train.trainable: only the named part moves, though both outputs' losses reach F.
        let only = after(false, &["base.ending".to_string()]);
        let ending = only.keys().filter(|k| k.starts_with("base.ending")).count();
        assert_eq!(moved(&only, "base.ending"), ending, "every parameter of the trained part moves");
        assert_eq!(moved(&only, "base."), ending, "only base.ending may move in F");
        assert_eq!(moved(&only, "refiner."), 0, "R is not in train.trainable");
    }
}
