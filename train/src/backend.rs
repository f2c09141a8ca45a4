//! Training backends: one optimizer step of F + R (forward, Charbonnier losses, backward, Adam)
//! behind one trait, implemented on LibTorch through `tch` (the default: fastest on CPU) and on
//! burn's `flex` backend. Both run the model crate's single forward over `Ops`, use the same
//! Adam and exchange parameters and optimizer moments as flat [`ParamMap`]s, so checkpoints
//! are backend-neutral: a run can continue on another backend.

use crate::adam::Adam;
use crate::burn_ops::{BT, BurnOps, ParamStore};
use crate::model::{charbonnier, forward};
use crate::run::device;
use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use ptgrm_model::export::ModelConfig;
use ptgrm_model::params::{ParamMap, ParamValue};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// LibTorch (CPU) through the `tch` crate; needs the `tch` feature (default).
    Tch,
    /// The same trainer on CUDA device 0: needs a LibTorch with CUDA loaded at run time
    /// (docs/training.md, "Training on a GPU").
    TchCuda,
    /// burn's pure-Rust `flex` CPU backend (or CUDA with the `cuda` feature).
    Flex,
}

impl Backend {
    pub const NAMES: &'static str = "tch, tch-cuda, flex";

    /// The fastest backend compiled in.
    pub fn default_for_build() -> Backend {
        if cfg!(feature = "tch") { Backend::Tch } else { Backend::Flex }
    }

    pub fn parse(name: &str) -> Result<Backend> {
        match name {
            "tch" | "libtorch" if cfg!(feature = "tch") => Ok(Backend::Tch),
            "tch-cuda" | "cuda" if cfg!(feature = "tch") => Ok(Backend::TchCuda),
            "tch" | "libtorch" | "tch-cuda" | "cuda" => {
                bail!("backend {name:?} is not compiled into this trainer (build with --features tch)")
            }
            "flex" | "burn" => Ok(Backend::Flex),
            other => bail!("unknown backend {other:?}; expected one of {}", Backend::NAMES),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Tch => "tch",
            Backend::TchCuda => "tch-cuda",
            Backend::Flex => "flex",
        }
    }
}

/// What the loss is made of (Eq. 8 and the F-alone baseline) and how gradients are clipped.
#[derive(Clone, Copy, Debug)]
pub struct LossConfig {
    /// F is built in (trained); false = external frozen F, loss on R only.
    pub builtin: bool,
    /// λ1 of Eq. 8; 0 with a built-in F trains F alone (R's forward is skipped).
    pub lambda1: f64,
    pub charbonnier_eps: f64,
    /// Weight of `1 - SSIM` added to each output's Charbonnier loss (0 = none).
    pub ssim_weight: f64,
    /// Weight of channel values near 0 or 1 in the Charbonnier loss (1 = all alike).
    pub near_clip_weight: f64,
    /// Weight of the error's P = 4 phase-mean term (`train.grid_weight`; 0 = none).
    pub grid_weight: f64,
    /// Global gradient-norm clip (0 = none).
    pub grad_clip: f64,
    /// The built-in F runs without gradients and only R's loss is minimised (`train.freeze_base`).
    pub freeze_base: bool,
}

impl LossConfig {
    /// The recipe's loss: Eq. 8 with its λ1 and Charbonnier ε, its gradient clip.
    pub fn of(recipe: &crate::recipe::Recipe) -> LossConfig {
        let t = &recipe.train;
        LossConfig {
            builtin: matches!(recipe.base, crate::recipe::BaseSpec::Builtin),
            lambda1: t.lambda1,
            charbonnier_eps: t.charbonnier_eps,
            ssim_weight: t.ssim_weight,
            near_clip_weight: t.near_clip_weight,
            grid_weight: t.grid_weight,
            grad_clip: t.grad_clip,
            freeze_base: t.freeze_base,
        }
    }

    pub fn base_alone(&self) -> bool {
        self.builtin && self.lambda1 == 0.0
    }
}

/// One training batch in NCHW f32 layout.
pub struct StepBatch<'a> {
    pub n: usize,
    pub side: usize,
    pub degraded: &'a [f32],
    pub clean: &'a [f32],
    /// `[n, prior_dim]`.
    pub priors: &'a [f32],
    /// External F's output `[n, 3, side, side]`, when F is external.
    pub external_base: Option<&'a [f32]>,
}

#[derive(Clone, Copy, Debug)]
pub struct StepResult {
    pub loss: f64,
    pub loss_base: f64,
    pub loss_refined: f64,
    /// Global gradient norm before clipping (0 when not applied).
    pub grad_norm: f64,
    /// False when the loss was not finite: nothing was changed.
    pub applied: bool,
}

/// Adam's state as flat named vectors (the checkpoint's "adam_m" / "adam_v" groups).
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    pub t: u64,
    pub m: ParamMap,
    pub v: ParamMap,
}

pub trait Trainer {
    fn backend(&self) -> Backend;
    /// Forward, losses, backward and (when the loss is finite) one Adam update at `lr`.
    fn step(&mut self, batch: &StepBatch, lr: f64) -> StepResult;
    fn params(&self) -> ParamMap;
    fn optimizer_state(&self) -> OptimizerState;
    /// Adam updates applied so far.
    fn adam_steps(&self) -> u64;
}

/// A trainer on `backend`, starting from `params` (and Adam's state when resuming), training
/// the parameters named by a prefix in `trainable` (empty: all).
pub fn trainer(
    backend: Backend,
    cfg: &ModelConfig,
    loss: LossConfig,
    seed: u64,
    params: &ParamMap,
    optimizer: Option<&OptimizerState>,
    trainable: &[String],
) -> Result<Box<dyn Trainer>> {
    if let Some(p) = trainable.iter().find(|p| !params.keys().any(|k| k.starts_with(p.as_str()))) {
        bail!("train.trainable: no parameter of the model starts with {p:?}");
    }
    if loss.freeze_base {
        match &cfg.base {
            None => bail!("train.freeze_base needs a built-in F"),
            Some(b) if !ptgrm_model::joint::halves_separate(b, &cfg.refiner) => bail!(
                "train.freeze_base cannot split the pooled fused form (F's and R's heads share one upsampling): \
                 use base.view = \"unshuffled\" or refiner.fused_upsampling = false"
            ),
            Some(_) => {}
        }
    }
    match backend {
        Backend::Flex if loss.ssim_weight > 0.0 => {
            bail!("train.ssim_weight > 0 needs the tch backend (--backend tch): burn's flex trainer has the Charbonnier loss only")
        }
        Backend::Flex if loss.grid_weight > 0.0 => {
            bail!("train.grid_weight > 0 needs the tch backend (--backend tch): burn's flex trainer has the Charbonnier loss only")
        }
        Backend::Flex if loss.near_clip_weight != 1.0 => {
            bail!("train.near_clip_weight other than 1 needs the tch backend (--backend tch): burn's flex trainer weighs every pixel alike")
        }
        Backend::Flex if !trainable.is_empty() => {
            bail!("train.trainable needs the tch backend (--backend tch): burn's flex trainer trains every parameter")
        }
        Backend::Flex if loss.freeze_base => {
            bail!("train.freeze_base needs the tch backend (--backend tch): burn's flex trainer trains F and R together")
        }
        Backend::Flex => Ok(Box::new(BurnTrainer::new(cfg, loss, seed, params, optimizer))),
        #[cfg(feature = "tch")]
        Backend::Tch => {
            let mut t = crate::tch_train::TchTrainer::new(cfg, loss, seed, params, optimizer, tch::Device::Cpu);
            t.train_only(trainable);
            Ok(Box::new(t))
        }
        #[cfg(feature = "tch")]
        Backend::TchCuda => {
            if !tch::Cuda::is_available() {
                bail!(
                    "backend \"tch-cuda\": LibTorch sees no CUDA device. The trainer needs a CUDA build of the \
                     LibTorch it was compiled against, with libtorch_cuda.so loaded (docs/training.md, \
                     \"Training on a GPU\"), and a visible GPU"
                );
            }
            // Fixed crop sizes: let cuDNN pick the fastest convolution once per shape.
            tch::Cuda::cudnn_set_benchmark(true);
            let mut t = crate::tch_train::TchTrainer::new(cfg, loss, seed, params, optimizer, tch::Device::Cuda(0));
            t.train_only(trainable);
            Ok(Box::new(t))
        }
        #[cfg(not(feature = "tch"))]
        Backend::Tch | Backend::TchCuda => {
            bail!("backend {:?} is not compiled into this trainer (build with --features tch)", backend.name())
        }
    }
}

/// Flat copy of named burn vectors.
fn flat_map(map: &BTreeMap<String, Tensor<1>>) -> ParamMap {
    map.iter()
        .map(|(k, t)| {
            let data = t.to_data().convert::<f32>().try_to_vec::<f32>().expect("float moments");
            (k.clone(), ParamValue { shape: vec![data.len()], data })
        })
        .collect()
}

pub struct BurnTrainer {
    cfg: ModelConfig,
    loss: LossConfig,
    store: ParamStore,
    adam: Adam,
}

impl BurnTrainer {
    pub fn new(cfg: &ModelConfig, loss: LossConfig, seed: u64, params: &ParamMap, opt: Option<&OptimizerState>) -> BurnTrainer {
        let mut store = ParamStore::new(device().autodiff(), seed, true);
        store.load_param_map(params);
        let mut adam = Adam::default();
        if let Some(o) = opt {
            let inner = device();
            for (src, slot) in [(&o.m, &mut adam.m), (&o.v, &mut adam.v)] {
                for (k, v) in src {
                    slot.insert(k.clone(), Tensor::from_data(TensorData::new(v.data.clone(), [v.data.len()]), &inner));
                }
            }
            adam.t = o.t;
        }
        BurnTrainer { cfg: cfg.clone(), loss, store, adam }
    }
}

impl Trainer for BurnTrainer {
    fn backend(&self) -> Backend {
        Backend::Flex
    }

    fn step(&mut self, b: &StepBatch, lr: f64) -> StepResult {
        let (n, s, lc) = (b.n, b.side, self.loss);
        let dev = self.store.device.clone();
        let dim = b.priors.len() / n;
        let x = Tensor::<4>::from_data(TensorData::new(b.degraded.to_vec(), [n, 3, s, s]), &dev);
        let y = Tensor::<4>::from_data(TensorData::new(b.clean.to_vec(), [n, 3, s, s]), &dev);
        let g = Tensor::<2>::from_data(TensorData::new(b.priors.to_vec(), [n, dim]), &dev);
        let ext = b.external_base.map(|v| BT::R4(Tensor::from_data(TensorData::new(v.to_vec(), [n, 3, s, s]), &dev)));
        let (loss, loss_base, loss_ref) = if lc.base_alone() {
            let mut ops = BurnOps::new(&mut self.store);
            let base = ptgrm_model::base::base_forward(&mut ops, self.cfg.base.as_ref().expect("built-in F"), &BT::R4(x));
            let lb = charbonnier(base.r4(), y, lc.charbonnier_eps);
            (lb.clone(), lb.clone(), lb.zeros_like())
        } else {
            let (base, refined) = forward(&mut self.store, &self.cfg, &BT::R4(x), &BT::R2(g), ext);
            let lb = charbonnier(base.r4(), y.clone(), lc.charbonnier_eps);
            let lr_ = charbonnier(refined.r4(), y, lc.charbonnier_eps);
            let l = if lc.builtin { lb.clone() + lr_.clone().mul_scalar(lc.lambda1) } else { lr_.clone() };
            (l, lb, lr_)
        };
        let grads = loss.backward();
        let v = Tensor::cat(vec![loss.detach(), loss_base.detach(), loss_ref.detach()], 0)
            .to_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("loss values");
        let mut out = StepResult { loss: v[0] as f64, loss_base: v[1] as f64, loss_refined: v[2] as f64, grad_norm: 0.0, applied: false };
        if out.loss.is_finite() {
            out.grad_norm = self.adam.step(&mut self.store, &grads, lr, lc.grad_clip);
            out.applied = true;
        }
        out
    }

    fn params(&self) -> ParamMap {
        self.store.to_param_map()
    }

    fn optimizer_state(&self) -> OptimizerState {
        OptimizerState { t: self.adam.t, m: flat_map(&self.adam.m), v: flat_map(&self.adam.v) }
    }

    fn adam_steps(&self) -> u64 {
        self.adam.t
    }
}
