//! Adam over the flat parameter store, with optional global-norm gradient clipping. Its state
//! (step count, first and second moments) is plain named tensors so checkpoints hold it exactly.

use crate::burn_ops::ParamStore;
use burn::tensor::{Gradients, Tensor};
use std::collections::BTreeMap;

pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Number of updates applied so far.
    pub t: u64,
    pub m: BTreeMap<String, Tensor<1>>,
    pub v: BTreeMap<String, Tensor<1>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, t: 0, m: BTreeMap::new(), v: BTreeMap::new() }
    }
}

impl Adam {
    /// Applies one update from `grads`; returns the global gradient norm before clipping.
    /// Parameters without a gradient (frozen, or unused by this forward) are left unchanged.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Gradients, lr: f64, clip: f64) -> f64 {
        let names: Vec<String> = store.tensors.keys().cloned().collect();
        let mut found: Vec<(String, Tensor<1>)> = Vec::new();
        for name in names {
            if let Some(g) = store.tensors[&name].grad(grads) {
                found.push((name, g));
            }
        }
        if found.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor<1>> = found.iter().map(|(_, g)| (g.clone() * g.clone()).sum()).collect();
        let norm = Tensor::cat(sq, 0).sum().into_scalar::<f32>().sqrt() as f64;
        let scale = if clip > 0.0 && norm > clip { clip / norm } else { 1.0 };
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        let step_size = lr * bc2.sqrt() / bc1;
        for (name, g) in found {
            let g = if scale != 1.0 { g.mul_scalar(scale) } else { g };
            let m = match self.m.remove(&name) {
                Some(m) => m.mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1),
                None => g.clone().mul_scalar(1.0 - self.beta1),
            };
            let v = match self.v.remove(&name) {
                Some(v) => v.mul_scalar(self.beta2) + (g.clone() * g).mul_scalar(1.0 - self.beta2),
                None => (g.clone() * g).mul_scalar(1.0 - self.beta2),
            };
            let p = store.tensors[&name].clone().inner();
            let update = m.clone() / (v.clone().sqrt().add_scalar(self.eps * bc2.sqrt()));
            let p = p - update.mul_scalar(step_size);
            store.tensors.insert(name.clone(), Tensor::from_inner(p).require_grad());
            self.m.insert(name.clone(), m);
            self.v.insert(name, v);
        }
        norm
    }
}
