//! The training step on LibTorch: the model crate's forward through [`TchOps`], LibTorch's
//! autograd, and the same Adam (with global-norm clipping) as [`crate::adam::Adam`], written
//! with in-place updates under `no_grad`.

use crate::backend::{Backend, LossConfig, OptimizerState, StepBatch, StepResult, Trainer};
use crate::model::forward_ops;
use crate::tch_ops::{tensor, values, TchOps, TchStore, TT};
use ptgrm_model::export::ModelConfig;
use ptgrm_model::params::{ParamMap, ParamValue};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Charbonnier loss mean(sqrt((x - y)^2 + eps^2)).
fn charbonnier(x: &Tensor, y: &Tensor, eps: f64) -> Tensor {
    let d = x - y;
    (&d * &d + eps * eps).sqrt().mean(Kind::Float)
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
    pub fn new(cfg: &ModelConfig, loss: LossConfig, seed: u64, params: &ParamMap, opt: Option<&OptimizerState>) -> TchTrainer {
        let mut store = TchStore::new(seed, true);
        store.load_param_map(params);
        let (mut m, mut v) = (BTreeMap::new(), BTreeMap::new());
        let mut t = 0;
        if let Some(o) = opt {
            for (src, dst) in [(&o.m, &mut m), (&o.v, &mut v)] {
                for (k, val) in src {
                    // Moments are stored flat; give them the parameter's shape.
                    let shape = params.get(k).map(|p| p.shape.clone()).unwrap_or_else(|| vec![val.data.len()]);
                    dst.insert(k.clone(), tensor(&shape, &val.data));
                }
            }
            t = o.t;
        }
        TchTrainer { cfg: cfg.clone(), loss, store, t, m, v }
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
        Backend::Tch
    }

    fn step(&mut self, b: &StepBatch, lr: f64) -> StepResult {
        let (n, s, lc) = (b.n, b.side, self.loss);
        let dim = b.priors.len() / n;
        let x = TT(tensor(&[n, 3, s, s], b.degraded));
        let y = tensor(&[n, 3, s, s], b.clean);
        let g = TT(tensor(&[n, dim], b.priors));
        let ext = b.external_base.map(|v| TT(tensor(&[n, 3, s, s], v)));
        let mut ops = TchOps { store: &mut self.store };
        let (loss, loss_base, loss_ref) = if lc.base_alone() {
            let base = ptgrm_model::base::base_forward(&mut ops, self.cfg.base.as_ref().expect("built-in F"), &x);
            let lb = charbonnier(&base.0, &y, lc.charbonnier_eps);
            (lb.shallow_clone(), lb.shallow_clone(), lb.zeros_like())
        } else {
            let (base, refined) = forward_ops(&mut ops, &self.cfg, &x, &g, ext);
            let lb = charbonnier(&base.0, &y, lc.charbonnier_eps);
            let lr_ = charbonnier(&refined.0, &y, lc.charbonnier_eps);
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
