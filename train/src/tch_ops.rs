//! The LibTorch backend of the model's op set (`ptgrm_model::ops::Ops`), through `tch`: the
//! same forward the ONNX builder records and burn executes, on LibTorch tensors with its
//! autograd. It exists for speed: LibTorch's CPU kernels (oneDNN convolutions, fused
//! elementwise ops) train this model several times faster than burn's `flex` on two cores
//! (docs/training.md has the table).
//!
//! Parameters live in a [`TchStore`] in their model shapes; they enter and leave it as the
//! model crate's flat [`ParamMap`], so checkpoints are the same for every backend and a run can
//! change backend on resume.

use ptgrm_model::ops::{Conv2d, Init, Ops};
use ptgrm_model::params::{ParamMap, ParamValue, init_value};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// A LibTorch tensor as the op set's value: `Ops::T` must be `Clone`, and a tch tensor clones
/// only explicitly (`shallow_clone` shares storage and autograd history, which is what a value
/// in a forward graph means).
pub struct TT(pub Tensor);

impl Clone for TT {
    fn clone(&self) -> TT {
        TT(self.0.shallow_clone())
    }
}

/// Tensor from row-major f32 data of `shape`.
pub fn tensor(shape: &[usize], data: &[f32]) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(data).reshape(dims.as_slice())
}

/// Row-major f32 values of a tensor (any rank, any device).
pub fn values(t: &Tensor) -> Vec<f32> {
    let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view(-1);
    let n = t.numel();
    let mut out = vec![0f32; n];
    t.copy_data(&mut out, n);
    out
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().into_iter().map(|d| d as usize).collect()
}

/// Learnable parameters by name, in their model shapes.
pub struct TchStore {
    pub seed: u64,
    /// Where parameters (and every tensor the forward makes) live.
    pub device: Device,
    /// New parameters become autograd leaves (training) or plain tensors (inference).
    pub trainable: bool,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TchStore {
    pub fn new(seed: u64, trainable: bool, device: Device) -> TchStore {
        TchStore { seed, device, trainable, tensors: BTreeMap::new() }
    }

    pub fn insert(&mut self, name: &str, v: &ParamValue) {
        let t = tensor(&v.shape, &v.data).to_device(self.device);
        self.tensors.insert(name.to_string(), if self.trainable { t.set_requires_grad(true) } else { t });
    }

    pub fn load_param_map(&mut self, map: &ParamMap) {
        for (k, v) in map {
            self.insert(k, v);
        }
    }

    pub fn to_param_map(&self) -> ParamMap {
        self.tensors.iter().map(|(k, t)| (k.clone(), ParamValue { shape: dims(t), data: values(t) })).collect()
    }

    pub fn count(&self, prefix: &str) -> u64 {
        self.tensors.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, t)| t.numel() as u64).sum()
    }
}

/// The `Ops` implementation over a parameter store (on the store's device).
pub struct TchOps<'a> {
    pub store: &'a mut TchStore,
}

fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

impl Ops for TchOps<'_> {
    type T = TT;

    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> TT {
        if let Some(t) = self.store.tensors.get(name) {
            let s = dims(t);
            assert!(s == shape, "parameter {name}: stored shape {s:?}, the model asks for {shape:?}");
            return TT(t.shallow_clone());
        }
        let v = init_value(name, shape, init, self.store.seed);
        self.store.insert(name, &v);
        TT(self.store.tensors[name].shallow_clone())
    }

    fn constant(&mut self, shape: &[usize], data: &[f32]) -> TT {
        TT(tensor(shape, data).to_device(self.store.device))
    }

    fn conv2d(&mut self, x: &TT, weight: &TT, bias: Option<&TT>, conv: Conv2d) -> TT {
        let (s, p) = (conv.stride as i64, conv.padding as i64);
        TT(x.0.conv2d(&weight.0, bias.map(|b| &b.0), [s, s], [p, p], [1, 1], conv.groups as i64))
    }

    fn pad_replicate(&mut self, x: &TT, pad: usize) -> TT {
        let p = pad as i64;
        TT(x.0.replication_pad2d([p, p, p, p]))
    }

    fn avg_pool(&mut self, x: &TT, k: usize) -> TT {
        let k = k as i64;
        TT(x.0.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>))
    }

    fn pixel_shuffle(&mut self, x: &TT, r: usize) -> TT {
        TT(x.0.pixel_shuffle(r as i64))
    }

    fn add(&mut self, a: &TT, b: &TT) -> TT {
        TT(&a.0 + &b.0)
    }
    fn sub(&mut self, a: &TT, b: &TT) -> TT {
        TT(&a.0 - &b.0)
    }
    fn mul(&mut self, a: &TT, b: &TT) -> TT {
        TT(&a.0 * &b.0)
    }
    fn div(&mut self, a: &TT, b: &TT) -> TT {
        TT(&a.0 / &b.0)
    }
    fn add_scalar(&mut self, x: &TT, s: f32) -> TT {
        TT(&x.0 + s as f64)
    }
    fn mul_scalar(&mut self, x: &TT, s: f32) -> TT {
        TT(&x.0 * s as f64)
    }
    fn leaky_relu(&mut self, x: &TT, slope: f32) -> TT {
        // tch exposes leaky_relu only with the default slope; for 0 <= slope <= 1,
        // max(x, slope * x) is the same function with the same gradient away from 0.
        assert!((0.0..=1.0).contains(&slope), "leaky_relu slope {slope} outside [0, 1]");
        TT(x.0.maximum(&(&x.0 * slope as f64)))
    }
    fn relu(&mut self, x: &TT) -> TT {
        TT(x.0.relu())
    }
    fn sigmoid(&mut self, x: &TT) -> TT {
        TT(x.0.sigmoid())
    }
    fn erf(&mut self, x: &TT) -> TT {
        TT(x.0.erf())
    }
    fn sqrt(&mut self, x: &TT) -> TT {
        TT(x.0.sqrt())
    }
    fn clamp(&mut self, x: &TT, lo: f32, hi: f32) -> TT {
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => TT(x.0.clamp(lo as f64, hi as f64)),
            (true, false) => TT(x.0.clamp_min(lo as f64)),
            (false, true) => TT(x.0.clamp_max(hi as f64)),
            (false, false) => x.clone(),
        }
    }

    fn mean_keepdim(&mut self, x: &TT, axes: &[usize]) -> TT {
        TT(x.0.mean_dim(i64s(axes).as_slice(), true, Kind::Float))
    }
    fn sum_keepdim(&mut self, x: &TT, axes: &[usize]) -> TT {
        TT(x.0.sum_dim_intlist(i64s(axes).as_slice(), true, Kind::Float))
    }
    fn softmax(&mut self, x: &TT, axis: usize) -> TT {
        TT(x.0.softmax(axis as i64, Kind::Float))
    }
    fn matmul(&mut self, a: &TT, b: &TT) -> TT {
        TT(a.0.matmul(&b.0))
    }
    fn transpose_last2(&mut self, x: &TT) -> TT {
        TT(x.0.transpose(2, 3))
    }

    fn concat(&mut self, xs: &[&TT]) -> TT {
        let ts: Vec<&Tensor> = xs.iter().map(|t| &t.0).collect();
        TT(Tensor::cat(&ts, 1))
    }
    fn slice_channels(&mut self, x: &TT, start: usize, end: usize) -> TT {
        TT(x.0.narrow(1, start as i64, (end - start) as i64))
    }
    fn split_heads(&mut self, x: &TT, heads: usize) -> TT {
        let [n, c, h, w] = dims4(&x.0);
        let hd = heads as i64;
        TT(x.0.reshape([n, hd, c / hd, h * w]))
    }
    fn merge_heads(&mut self, x: &TT, like: &TT) -> TT {
        TT(x.0.reshape(dims4(&like.0)))
    }
    fn mean_hw(&mut self, x: &TT) -> TT {
        TT(x.0.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
    }
    fn reshape(&mut self, x: &TT, shape: &[usize]) -> TT {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        TT(x.0.reshape(dims.as_slice()))
    }
    fn unsqueeze_hw(&mut self, v: &TT) -> TT {
        TT(v.0.unsqueeze(-1).unsqueeze(-1))
    }
    fn expand_hw(&mut self, v: &TT, like: &TT) -> TT {
        let [_, _, h, w] = dims4(&like.0);
        let s = v.0.size();
        TT(v.0.unsqueeze(-1).unsqueeze(-1).expand([s[0], s[1], h, w], false))
    }
    fn unflatten_hw(&mut self, v: &TT, h: usize, w: usize) -> TT {
        let s = v.0.size();
        let (h, w) = (h as i64, w as i64);
        TT(v.0.reshape([s[0], s[1] / (h * w), h, w]))
    }
    fn resize_bilinear(&mut self, x: &TT, like: &TT) -> TT {
        let [_, _, h, w] = dims4(&like.0);
        TT(x.0.upsample_bilinear2d([h, w], false, None::<f64>, None::<f64>))
    }
    fn linear(&mut self, x: &TT, weight: &TT, bias: Option<&TT>) -> TT {
        TT(x.0.linear(&weight.0, bias.map(|b| &b.0)))
    }
    fn coord_grid(&mut self, like: &TT) -> TT {
        let [n, _, h, w] = dims4(&like.0);
        // -1 + 2i / max(len - 1, 1), as the op set defines it.
        let axis = |len: i64| Tensor::arange(len, (Kind::Float, like.0.device())) * (2.0 / (len.max(2) - 1) as f64) - 1.0;
        let xs = axis(w).view([1, 1, 1, w]).expand([n, 1, h, w], false);
        let ys = axis(h).view([1, 1, h, 1]).expand([n, 1, h, w], false);
        TT(Tensor::cat(&[xs, ys], 1))
    }
}

fn dims4(t: &Tensor) -> [i64; 4] {
    let s = t.size();
    assert_eq!(s.len(), 4, "expected a rank-4 tensor, got shape {s:?}");
    [s[0], s[1], s[2], s[3]]
}
