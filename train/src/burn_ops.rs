//! The burn backend of the model's op set (`ptgrm_model::ops::Ops`): the same forward that the
//! ONNX builder records is executed here on burn tensors, with autodiff while training.
//!
//! Parameters live in a [`ParamStore`]: name -> flat 1-D tensor, created on first request from
//! the model crate's deterministic `init_value`, reshaped to the requested shape in each forward.
//! Flat storage keeps the optimizer and the checkpoint format rank-agnostic.

use burn::tensor::ops::{AvgPoolOptions, ConvOptions, InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData, activation, module};
use ptgrm_model::ops::{Conv2d, Init, Ops};
use ptgrm_model::params::{ParamMap, ParamValue, init_value};
use std::collections::BTreeMap;

/// A tensor of the rank the model's convention gives it: vectors `[N, C]`, parameters of rank
/// 1, 2 or 4, feature maps NCHW.
#[derive(Clone, Debug)]
pub enum BT {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R4(Tensor<4>),
}

impl BT {
    pub fn r1(&self) -> Tensor<1> {
        match self {
            BT::R1(t) => t.clone(),
            other => panic!("expected a rank-1 tensor, got shape {:?}", other.dims()),
        }
    }
    pub fn r2(&self) -> Tensor<2> {
        match self {
            BT::R2(t) => t.clone(),
            other => panic!("expected a rank-2 tensor, got shape {:?}", other.dims()),
        }
    }
    pub fn r4(&self) -> Tensor<4> {
        match self {
            BT::R4(t) => t.clone(),
            other => panic!("expected a rank-4 tensor, got shape {:?}", other.dims()),
        }
    }
    pub fn dims(&self) -> Vec<usize> {
        match self {
            BT::R1(t) => t.dims().to_vec(),
            BT::R2(t) => t.dims().to_vec(),
            BT::R4(t) => t.dims().to_vec(),
        }
    }
    /// Row-major values (copies to the host).
    pub fn to_vec(&self) -> Vec<f32> {
        let data = match self {
            BT::R1(t) => t.to_data(),
            BT::R2(t) => t.to_data(),
            BT::R4(t) => t.to_data(),
        };
        data.convert::<f32>().try_to_vec::<f32>().expect("float tensor data")
    }
}

/// Builds a tensor of rank `shape.len()` (1, 2 or 4) from row-major data.
pub fn tensor_from(shape: &[usize], data: Vec<f32>, device: &Device) -> BT {
    let td = TensorData::new(data, shape.to_vec());
    match shape.len() {
        1 => BT::R1(Tensor::from_data(td, device)),
        2 => BT::R2(Tensor::from_data(td, device)),
        4 => BT::R4(Tensor::from_data(td, device)),
        r => panic!("tensors of rank {r} are not used by the model (shape {shape:?})"),
    }
}

/// Learnable parameters by name, stored flat.
pub struct ParamStore {
    pub device: Device,
    /// Seed of the deterministic initialization (`ptgrm_model::params::init_value`).
    pub seed: u64,
    /// New parameters become autodiff leaves (training) or plain tensors (inference).
    pub trainable: bool,
    pub tensors: BTreeMap<String, Tensor<1>>,
    pub shapes: BTreeMap<String, Vec<usize>>,
    /// Names whose parameters are frozen (not given gradients), e.g. an external base.
    pub frozen_prefixes: Vec<String>,
}

impl ParamStore {
    pub fn new(device: Device, seed: u64, trainable: bool) -> ParamStore {
        ParamStore { device, seed, trainable, tensors: BTreeMap::new(), shapes: BTreeMap::new(), frozen_prefixes: vec![] }
    }

    fn is_frozen(&self, name: &str) -> bool {
        self.frozen_prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Inserts (or replaces) a parameter from host values.
    pub fn insert(&mut self, name: &str, value: &ParamValue) {
        let t: Tensor<1> = Tensor::from_data(TensorData::new(value.data.clone(), [value.data.len()]), &self.device);
        let t = if self.trainable && !self.is_frozen(name) { t.require_grad() } else { t };
        self.tensors.insert(name.to_string(), t);
        self.shapes.insert(name.to_string(), value.shape.clone());
    }

    pub fn to_param_map(&self) -> ParamMap {
        self.tensors
            .iter()
            .map(|(k, t)| {
                let data = t.to_data().convert::<f32>().try_to_vec::<f32>().expect("float parameter");
                (k.clone(), ParamValue { shape: self.shapes[k].clone(), data })
            })
            .collect()
    }

    pub fn load_param_map(&mut self, map: &ParamMap) {
        for (k, v) in map {
            self.insert(k, v);
        }
    }

    /// A copy for inference: same values, no autodiff, on `device`.
    pub fn inference_copy(&self) -> ParamStore {
        let mut out = ParamStore::new(self.device.clone(), self.seed, false);
        out.frozen_prefixes = self.frozen_prefixes.clone();
        for (k, t) in &self.tensors {
            out.tensors.insert(k.clone(), t.clone().inner());
            out.shapes.insert(k.clone(), self.shapes[k].clone());
        }
        out
    }

    pub fn count(&self, prefix: &str) -> u64 {
        self.shapes.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, s)| s.iter().product::<usize>() as u64).sum()
    }
}

/// The `Ops` implementation over a parameter store.
pub struct BurnOps<'a> {
    pub store: &'a mut ParamStore,
}

impl<'a> BurnOps<'a> {
    pub fn new(store: &'a mut ParamStore) -> BurnOps<'a> {
        BurnOps { store }
    }
}

/// Expands both operands to their common shape (same-rank broadcasting over size-1 dims).
fn broadcast_pair<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let (da, db) = (a.dims(), b.dims());
    if da == db {
        return (a, b);
    }
    let mut t = [0usize; D];
    for i in 0..D {
        assert!(da[i] == db[i] || da[i] == 1 || db[i] == 1, "cannot broadcast {da:?} with {db:?}");
        t[i] = da[i].max(db[i]);
    }
    let a = if da == t { a } else { a.expand(t) };
    let b = if db == t { b } else { b.expand(t) };
    (a, b)
}

macro_rules! unary {
    ($x:expr, |$t:ident| $body:expr) => {
        match $x.clone() {
            BT::R1($t) => BT::R1($body),
            BT::R2($t) => BT::R2($body),
            BT::R4($t) => BT::R4($body),
        }
    };
}

macro_rules! binary {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a.clone(), $b.clone()) {
            (BT::R1($x), BT::R1($y)) => {
                assert_eq!($x.dims(), $y.dims(), "rank-1 operands must match");
                BT::R1($body)
            }
            (BT::R2(p), BT::R2(q)) => {
                let ($x, $y) = broadcast_pair(p, q);
                BT::R2($body)
            }
            (BT::R4(p), BT::R4(q)) => {
                let ($x, $y) = broadcast_pair(p, q);
                BT::R4($body)
            }
            (p, q) => panic!("operands of different rank: {:?} and {:?}", p.dims(), q.dims()),
        }
    };
}

impl Ops for BurnOps<'_> {
    type T = BT;

    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> BT {
        match self.store.shapes.get(name) {
            Some(s) if s.as_slice() != shape => {
                panic!("parameter {name}: stored shape {s:?}, the model asks for {shape:?}")
            }
            Some(_) => {}
            None => {
                let v = init_value(name, shape, init, self.store.seed);
                self.store.insert(name, &v);
            }
        }
        let flat = self.store.tensors[name].clone();
        match shape.len() {
            1 => BT::R1(flat),
            2 => BT::R2(flat.reshape([shape[0], shape[1]])),
            4 => BT::R4(flat.reshape([shape[0], shape[1], shape[2], shape[3]])),
            r => panic!("parameter {name}: rank {r} is not supported"),
        }
    }

    fn constant(&mut self, shape: &[usize], data: &[f32]) -> BT {
        tensor_from(shape, data.to_vec(), &self.store.device)
    }

    fn conv2d(&mut self, x: &BT, weight: &BT, bias: Option<&BT>, conv: Conv2d) -> BT {
        let p = conv.padding;
        let opts = ConvOptions::new([conv.stride; 2], [p, p], [1, 1], conv.groups);
        BT::R4(module::conv2d(x.r4(), weight.r4(), bias.map(|b| b.r1()), opts))
    }

    fn pad_replicate(&mut self, x: &BT, pad: usize) -> BT {
        BT::R4(x.r4().pad((pad, pad, pad, pad), PadMode::Edge))
    }

    fn avg_pool(&mut self, x: &BT, k: usize) -> BT {
        let opts = AvgPoolOptions::new([k, k]);
        BT::R4(module::avg_pool2d(x.r4(), opts))
    }

    fn pixel_shuffle(&mut self, x: &BT, r: usize) -> BT {
        let [n, crr, h, w] = x.r4().dims();
        let c = crr / (r * r);
        let t: Tensor<6> = x.r4().reshape([n, c, r, r, h, w]);
        BT::R4(t.permute([0, 1, 4, 2, 5, 3]).reshape([n, c, h * r, w * r]))
    }

    fn add(&mut self, a: &BT, b: &BT) -> BT {
        binary!(a, b, |x, y| x + y)
    }
    fn sub(&mut self, a: &BT, b: &BT) -> BT {
        binary!(a, b, |x, y| x - y)
    }
    fn mul(&mut self, a: &BT, b: &BT) -> BT {
        binary!(a, b, |x, y| x * y)
    }
    fn div(&mut self, a: &BT, b: &BT) -> BT {
        binary!(a, b, |x, y| x / y)
    }
    fn add_scalar(&mut self, x: &BT, s: f32) -> BT {
        unary!(x, |t| t.add_scalar(s))
    }
    fn mul_scalar(&mut self, x: &BT, s: f32) -> BT {
        unary!(x, |t| t.mul_scalar(s))
    }
    fn leaky_relu(&mut self, x: &BT, slope: f32) -> BT {
        unary!(x, |t| activation::leaky_relu(t, slope as f64))
    }
    fn relu(&mut self, x: &BT) -> BT {
        unary!(x, |t| activation::relu(t))
    }
    fn sigmoid(&mut self, x: &BT) -> BT {
        unary!(x, |t| activation::sigmoid(t))
    }
    fn erf(&mut self, x: &BT) -> BT {
        unary!(x, |t| t.erf())
    }
    fn sqrt(&mut self, x: &BT) -> BT {
        unary!(x, |t| t.sqrt())
    }
    fn clamp(&mut self, x: &BT, lo: f32, hi: f32) -> BT {
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => unary!(x, |t| t.clamp(lo, hi)),
            (true, false) => unary!(x, |t| t.clamp_min(lo)),
            (false, true) => unary!(x, |t| t.clamp_max(hi)),
            (false, false) => x.clone(),
        }
    }

    fn mean_keepdim(&mut self, x: &BT, axes: &[usize]) -> BT {
        let mut y = x.clone();
        for &a in axes {
            y = unary!(y, |t| t.mean_dim(a));
        }
        y
    }
    fn sum_keepdim(&mut self, x: &BT, axes: &[usize]) -> BT {
        let mut y = x.clone();
        for &a in axes {
            y = unary!(y, |t| t.sum_dim(a));
        }
        y
    }
    fn softmax(&mut self, x: &BT, axis: usize) -> BT {
        unary!(x, |t| activation::softmax(t, axis))
    }
    fn matmul(&mut self, a: &BT, b: &BT) -> BT {
        match (a, b) {
            (BT::R4(x), BT::R4(y)) => BT::R4(x.clone().matmul(y.clone())),
            (BT::R2(x), BT::R2(y)) => BT::R2(x.clone().matmul(y.clone())),
            (p, q) => panic!("matmul of shapes {:?} and {:?}", p.dims(), q.dims()),
        }
    }
    fn transpose_last2(&mut self, x: &BT) -> BT {
        BT::R4(x.r4().swap_dims(2, 3))
    }

    fn concat(&mut self, xs: &[&BT]) -> BT {
        match xs[0] {
            BT::R4(_) => BT::R4(Tensor::cat(xs.iter().map(|t| t.r4()).collect(), 1)),
            BT::R2(_) => BT::R2(Tensor::cat(xs.iter().map(|t| t.r2()).collect(), 1)),
            BT::R1(_) => panic!("concat of rank-1 tensors is not part of the op set"),
        }
    }
    fn slice_channels(&mut self, x: &BT, start: usize, end: usize) -> BT {
        unary!(x, |t| t.narrow(1, start, end - start))
    }
    fn reshape(&mut self, x: &BT, shape: &[usize]) -> BT {
        let flat: Tensor<1> = match x {
            BT::R1(t) => t.clone(),
            BT::R2(t) => t.clone().flatten(0, 1),
            BT::R4(t) => t.clone().flatten(0, 3),
        };
        match *shape {
            [a] => BT::R1(flat.reshape([a])),
            [a, b] => BT::R2(flat.reshape([a, b])),
            [a, b, c, d] => BT::R4(flat.reshape([a, b, c, d])),
            _ => panic!("reshape to rank {} (1, 2 or 4 supported)", shape.len()),
        }
    }
    fn split_heads(&mut self, x: &BT, heads: usize) -> BT {
        let [n, c, h, w] = x.r4().dims();
        BT::R4(x.r4().reshape([n, heads, c / heads, h * w]))
    }
    fn merge_heads(&mut self, x: &BT, like: &BT) -> BT {
        let [n, c, h, w] = like.r4().dims();
        BT::R4(x.r4().reshape([n, c, h, w]))
    }
    fn mean_hw(&mut self, x: &BT) -> BT {
        let [n, c, _, _] = x.r4().dims();
        BT::R2(x.r4().mean_dim(2).mean_dim(3).reshape([n, c]))
    }
    fn unsqueeze_hw(&mut self, v: &BT) -> BT {
        let [n, c] = v.r2().dims();
        BT::R4(v.r2().reshape([n, c, 1, 1]))
    }
    fn expand_hw(&mut self, v: &BT, like: &BT) -> BT {
        let [n, c] = v.r2().dims();
        let [_, _, h, w] = like.r4().dims();
        BT::R4(v.r2().reshape([n, c, 1, 1]).expand([n, c, h, w]))
    }
    fn unflatten_hw(&mut self, v: &BT, h: usize, w: usize) -> BT {
        let [n, chw] = v.r2().dims();
        BT::R4(v.r2().reshape([n, chw / (h * w), h, w]))
    }
    fn resize_bilinear(&mut self, x: &BT, like: &BT) -> BT {
        let [_, _, h, w] = like.r4().dims();
        let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size([h, w]);
        BT::R4(module::interpolate(x.r4(), opts))
    }
    fn linear(&mut self, x: &BT, weight: &BT, bias: Option<&BT>) -> BT {
        let y = x.r2().matmul(weight.r2().transpose());
        match bias {
            Some(b) => {
                let [o] = b.r1().dims();
                let [n, _] = y.dims();
                BT::R2(y + b.r1().reshape([1, o]).expand([n, o]))
            }
            None => BT::R2(y),
        }
    }
    fn coord_grid(&mut self, like: &BT) -> BT {
        let [n, _, h, w] = like.r4().dims();
        // -1 + 2i / max(len - 1, 1), as the op set defines it.
        let step = |i: usize, len: usize| -1.0 + 2.0 * i as f32 / (len.max(2) - 1) as f32;
        let mut data = Vec::with_capacity(n * 2 * h * w);
        for _ in 0..n {
            for _ in 0..h {
                for j in 0..w {
                    data.push(step(j, w));
                }
            }
            for i in 0..h {
                for _ in 0..w {
                    data.push(step(i, h));
                }
            }
        }
        tensor_from(&[n, 2, h, w], data, &self.store.device)
    }
}
