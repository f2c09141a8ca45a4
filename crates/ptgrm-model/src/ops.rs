//! The small op set every ptgrm network is written against, once.
//!
//! A model's forward is a generic function `fn forward<O: Ops>(o: &mut O, ...) -> O::T`. Run it
//! with the ONNX builder ([`crate::onnx_builder::OnnxBuilder`]) and it records a graph; run it
//! with the trainer's burn backend and it computes (and differentiates) on tensors. Both see the
//! same calls in the same order, so training and export cannot drift.
//!
//! Usage (a 3x3 conv layer followed by LeakyReLU):
//! ```ignore
//! fn block<O: Ops>(o: &mut O, x: &O::T) -> O::T {
//!     let w = o.param("enc.conv0.weight", &[16, 6, 3, 3], Init::kaiming_uniform(6 * 9));
//!     let b = o.param("enc.conv0.bias", &[16], Init::bias(6 * 9));
//!     let y = o.conv2d(x, &w, Some(&b), Conv2d::same(3));
//!     o.leaky_relu(&y, 0.1)
//! }
//! ```
//!
//! Conventions a backend must follow:
//! - Image-like tensors are NCHW. Vectors are `[N, C]`. Every tensor has a fixed rank known to
//!   the model; broadcasting binary ops only ever combine tensors of the *same rank* whose
//!   differing dims are 1 (numpy rules without rank promotion), so statically-ranked tensor
//!   libraries can implement them.
//! - N, H and W are dynamic (only known at run time); channel counts are static.
//! - `param` is called with a dotted name that is unique within the model; the backend returns
//!   the tensor stored under that name (creating it from `init` if it has none). Parameter
//!   layouts follow PyTorch: conv weight `[out, in/groups, k, k]`, conv/linear bias `[out]`,
//!   linear weight `[out, in]`. Parameters that scale feature maps (LayerNorm weight/bias,
//!   attention temperature) are stored in broadcastable rank-4 form `[1, C, 1, 1]`.
//! - Methods with a default body are compositions of the required ones; a backend may
//!   override one only with an exactly equivalent computation.

/// How a parameter is initialised when the backend has no stored value for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in (-bound, bound).
    Uniform { bound: f32 },
    /// PyTorch's `kaiming_uniform_(a)`: bound = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in).
    KaimingUniform { fan_in: usize, a: f32 },
    /// Every element equals the value (LayerNorm weight 1, bias 0, temperature 1).
    Const(f32),
    /// Uniform in (-bound, bound) for the first of every `repeat` consecutive output channels,
    /// copied to the other `repeat - 1` (ICNR: a conv feeding PixelShuffle(r) with repeat = r²
    /// starts as nearest-neighbour upsampling, so it starts without a period-r pattern).
    Repeat { bound: f32, repeat: usize },
}

impl Init {
    /// PyTorch's default for conv and linear weights: kaiming_uniform with a = sqrt(5).
    pub fn kaiming_uniform(fan_in: usize) -> Init {
        Init::KaimingUniform { fan_in, a: 5f32.sqrt() }
    }

    /// PyTorch's default for conv and linear biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    pub fn bias(fan_in: usize) -> Init {
        Init::Uniform { bound: 1.0 / (fan_in.max(1) as f32).sqrt() }
    }

    /// The half-width of the uniform range, or None for a constant.
    pub fn bound(&self) -> Option<f32> {
        match *self {
            Init::Uniform { bound } => Some(bound),
            Init::KaimingUniform { fan_in, a } => {
                let gain = (2.0 / (1.0 + a * a)).sqrt();
                Some(gain * (3.0 / fan_in.max(1) as f32).sqrt())
            }
            Init::Repeat { bound, .. } => Some(bound),
            Init::Const(_) => None,
        }
    }
}

/// Options of a 2-D convolution. Padding is zero padding on all four sides; dilation is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Conv2d {
    /// Stride 1, padding k/2 (size-preserving for odd k), one group.
    pub fn same(k: usize) -> Conv2d {
        Conv2d { stride: 1, padding: k / 2, groups: 1 }
    }

    /// Stride 2, padding k/2: halves H and W (for even H, W).
    pub fn down(k: usize) -> Conv2d {
        Conv2d { stride: 2, padding: k / 2, groups: 1 }
    }

    pub fn with_groups(self, groups: usize) -> Conv2d {
        Conv2d { groups, ..self }
    }
}

/// The op set. `T` is the backend's tensor (or graph value) type.
pub trait Ops {
    type T: Clone;

    // ---- parameters and constants -------------------------------------------------------

    /// The learnable tensor stored under `name`, of the given shape.
    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Self::T;
    /// A fixed (non-learnable) tensor, row-major `data` of `shape`.
    fn constant(&mut self, shape: &[usize], data: &[f32]) -> Self::T;

    // ---- convolution and resampling (NCHW) ----------------------------------------------

    /// 2-D convolution (cross-correlation, as in PyTorch). weight `[out, in/groups, kh, kw]`,
    /// bias `[out]`.
    fn conv2d(&mut self, x: &Self::T, weight: &Self::T, bias: Option<&Self::T>, conv: Conv2d) -> Self::T;
    /// Pads H and W by `pad` on every side, repeating the edge pixels.
    fn pad_replicate(&mut self, x: &Self::T, pad: usize) -> Self::T;
    /// Average pooling with kernel = stride = k, no padding (H, W multiples of k).
    fn avg_pool(&mut self, x: &Self::T, k: usize) -> Self::T;
    /// PyTorch `PixelShuffle(r)` (ONNX DepthToSpace, mode CRD): `[N, C*r*r, H, W]` ->
    /// `[N, C, H*r, W*r]`, input channel `c*r*r + i*r + j` going to offset (i, j).
    fn pixel_shuffle(&mut self, x: &Self::T, r: usize) -> Self::T;

    // ---- elementwise (same-rank broadcasting) --------------------------------------------

    fn add(&mut self, a: &Self::T, b: &Self::T) -> Self::T;
    fn sub(&mut self, a: &Self::T, b: &Self::T) -> Self::T;
    fn mul(&mut self, a: &Self::T, b: &Self::T) -> Self::T;
    fn div(&mut self, a: &Self::T, b: &Self::T) -> Self::T;
    fn add_scalar(&mut self, x: &Self::T, s: f32) -> Self::T;
    fn mul_scalar(&mut self, x: &Self::T, s: f32) -> Self::T;
    /// max(x, 0) + slope * min(x, 0).
    fn leaky_relu(&mut self, x: &Self::T, slope: f32) -> Self::T;
    fn relu(&mut self, x: &Self::T) -> Self::T;
    fn sigmoid(&mut self, x: &Self::T) -> Self::T;
    fn erf(&mut self, x: &Self::T) -> Self::T;
    fn sqrt(&mut self, x: &Self::T) -> Self::T;
    /// Clamps to [lo, hi]; either bound may be infinite (no bound on that side).
    fn clamp(&mut self, x: &Self::T, lo: f32, hi: f32) -> Self::T;

    // ---- reductions and attention ---------------------------------------------------------

    /// Mean over the given axes, which are kept with size 1.
    fn mean_keepdim(&mut self, x: &Self::T, axes: &[usize]) -> Self::T;
    /// Sum over the given axes, which are kept with size 1.
    fn sum_keepdim(&mut self, x: &Self::T, axes: &[usize]) -> Self::T;
    fn softmax(&mut self, x: &Self::T, axis: usize) -> Self::T;
    /// Batched matrix product over the last two axes (leading axes equal).
    fn matmul(&mut self, a: &Self::T, b: &Self::T) -> Self::T;
    /// Swaps the last two axes of a rank-4 tensor.
    fn transpose_last2(&mut self, x: &Self::T) -> Self::T;

    // ---- shape ---------------------------------------------------------------------------

    /// Concatenation along axis 1 (channels of NCHW, features of `[N, C]`).
    fn concat(&mut self, xs: &[&Self::T]) -> Self::T;
    /// Channels `start..end` (axis 1).
    fn slice_channels(&mut self, x: &Self::T, start: usize, end: usize) -> Self::T;
    /// `[N, C, H, W]` -> `[N, heads, C/heads, H*W]` (row-major reshape).
    fn split_heads(&mut self, x: &Self::T, heads: usize) -> Self::T;
    /// `[N, heads, c, H*W]` -> `[N, heads*c, H, W]` with H, W taken from `like` (`[N, heads*c, H, W]`).
    fn merge_heads(&mut self, x: &Self::T, like: &Self::T) -> Self::T;
    /// The same values in row-major order under another shape of rank 1, 2 or 4 (same count).
    fn reshape(&mut self, x: &Self::T, shape: &[usize]) -> Self::T;
    /// Mean over H and W: `[N, C, H, W]` -> `[N, C]`.
    fn mean_hw(&mut self, x: &Self::T) -> Self::T;
    /// `[N, C]` -> `[N, C, 1, 1]`.
    fn unsqueeze_hw(&mut self, v: &Self::T) -> Self::T;
    /// `[N, C]` -> `[N, C, h, w]`, repeated over the spatial size of `like` (`[N, *, h, w]`).
    fn expand_hw(&mut self, v: &Self::T, like: &Self::T) -> Self::T;
    /// `[N, C*h*w]` -> `[N, C, h, w]` (row-major; N stays dynamic): a flattened feature map,
    /// such as a prior grid, back in image layout.
    fn unflatten_hw(&mut self, v: &Self::T, h: usize, w: usize) -> Self::T;
    /// Bilinear resize of `x [N, C, h, w]` to the spatial size of `like` (`[N, *, H, W]`) with
    /// half-pixel centres and edge clamping, no antialiasing (PyTorch `interpolate(mode=
    /// "bilinear", align_corners=False)`, ONNX Resize linear half_pixel).
    fn resize_bilinear(&mut self, x: &Self::T, like: &Self::T) -> Self::T;
    /// `x [N, in]` -> `x W^T + b`, `[N, out]`; weight `[out, in]`, bias `[out]`.
    fn linear(&mut self, x: &Self::T, weight: &Self::T, bias: Option<&Self::T>) -> Self::T;
    /// Normalized pixel coordinates of `like`'s spatial size: `[N, 2, h, w]`, channel 0 the
    /// column x = -1 + 2j/max(w-1, 1), channel 1 the row y = -1 + 2i/max(h-1, 1)
    /// (so each runs over [-1, 1], like `torch.linspace(-1, 1, n)`).
    fn coord_grid(&mut self, like: &Self::T) -> Self::T;

    // ---- compositions (default bodies) -----------------------------------------------------

    /// Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
    fn gelu(&mut self, x: &Self::T) -> Self::T {
        let s = self.mul_scalar(x, std::f32::consts::FRAC_1_SQRT_2);
        let e = self.erf(&s);
        let e1 = self.add_scalar(&e, 1.0);
        let h = self.mul_scalar(x, 0.5);
        self.mul(&h, &e1)
    }

    /// ReLU6 = clamp(x, 0, 6).
    fn relu6(&mut self, x: &Self::T) -> Self::T {
        self.clamp(x, 0.0, 6.0)
    }

    /// Instance normalization over H, W per sample and channel, no affine (PyTorch
    /// `InstanceNorm2d(affine=False)`, biased variance).
    fn instance_norm(&mut self, x: &Self::T, eps: f32) -> Self::T {
        let mu = self.mean_keepdim(x, &[2, 3]);
        let d = self.sub(x, &mu);
        let d2 = self.mul(&d, &d);
        let var = self.mean_keepdim(&d2, &[2, 3]);
        let ve = self.add_scalar(&var, eps);
        let sd = self.sqrt(&ve);
        self.div(&d, &sd)
    }

    /// LayerNorm over channels at each pixel, with weight and bias `[1, C, 1, 1]` (Restormer's
    /// WithBias_LayerNorm: biased variance).
    fn layer_norm_channels(&mut self, x: &Self::T, weight: &Self::T, bias: &Self::T, eps: f32) -> Self::T {
        let mu = self.mean_keepdim(x, &[1]);
        let d = self.sub(x, &mu);
        let d2 = self.mul(&d, &d);
        let var = self.mean_keepdim(&d2, &[1]);
        let ve = self.add_scalar(&var, eps);
        let sd = self.sqrt(&ve);
        let n = self.div(&d, &sd);
        let s = self.mul(&n, weight);
        self.add(&s, bias)
    }

    /// x / max(||x||_2, eps) along `axis` (PyTorch `F.normalize`).
    fn l2_normalize(&mut self, x: &Self::T, axis: usize, eps: f32) -> Self::T {
        let sq = self.mul(x, x);
        let ss = self.sum_keepdim(&sq, &[axis]);
        let norm = self.sqrt(&ss);
        let den = self.clamp(&norm, eps, f32::INFINITY);
        self.div(x, &den)
    }

    /// Per-pixel dynamic k x k convolution of `x` (`[N, channels, H, W]`) with replicate
    /// padding: `kernels` is `[N, channels*k*k, H, W]`, and
    /// `out[c, y, x] = sum_{i,j} kernels[c*k*k + i*k + j, y, x] * xpad[c, y + i, x + j]`.
    /// Built from a fixed one-hot grouped conv (patch extraction), a product and a grouped
    /// ones conv (tap sum), which lowers to plain ONNX ops for any H, W.
    fn dynamic_conv(&mut self, x: &Self::T, kernels: &Self::T, channels: usize, k: usize) -> Self::T {
        let kk = k * k;
        let xp = self.pad_replicate(x, k / 2);
        let mut onehot = vec![0.0f32; channels * kk * kk];
        for c in 0..channels {
            for t in 0..kk {
                onehot[(c * kk + t) * kk + t] = 1.0;
            }
        }
        let w_patch = self.constant(&[channels * kk, 1, k, k], &onehot);
        let patches = self.conv2d(&xp, &w_patch, None, Conv2d { stride: 1, padding: 0, groups: channels });
        let prod = self.mul(&patches, kernels);
        let w_sum = self.constant(&[channels, kk, 1, 1], &vec![1.0; channels * kk]);
        self.conv2d(&prod, &w_sum, None, Conv2d { stride: 1, padding: 0, groups: channels })
    }

    /// Bilinear upsampling by an integer factor with half-pixel centres and edge clamping
    /// (PyTorch `interpolate(mode="bilinear", align_corners=False)`, ONNX Resize half_pixel):
    /// [`Ops::bilinear_phases`], then pixel_shuffle.
    fn upsample_bilinear(&mut self, x: &Self::T, channels: usize, factor: usize) -> Self::T {
        if factor == 1 {
            return x.clone();
        }
        let phases = self.bilinear_phases(x, channels, factor);
        self.pixel_shuffle(&phases, factor)
    }

    /// Bilinear upsampling by `factor` still at `x`'s resolution: for each channel the
    /// `factor²` output sub-positions (pixel-shuffle order), each a fixed 3x3 depthwise conv of
    /// the replicate-padded input. Adding other per-sub-position maps here and shuffling once
    /// costs one full-resolution op instead of a resize, a shuffle and an add.
    fn bilinear_phases(&mut self, x: &Self::T, channels: usize, factor: usize) -> Self::T {
        let taps = |p: usize| -> [f32; 3] {
            let t = (p as f32 + 0.5) / factor as f32 - 0.5;
            if t < 0.0 { [-t, 1.0 + t, 0.0] } else { [0.0, 1.0 - t, t] }
        };
        let ff = factor * factor;
        let mut w = vec![0.0f32; channels * ff * 9];
        for c in 0..channels {
            for py in 0..factor {
                for px in 0..factor {
                    let (ty, tx) = (taps(py), taps(px));
                    let base = (c * ff + py * factor + px) * 9;
                    for i in 0..3 {
                        for j in 0..3 {
                            w[base + i * 3 + j] = ty[i] * tx[j];
                        }
                    }
                }
            }
        }
        let xp = self.pad_replicate(x, 1);
        let wt = self.constant(&[channels * ff, 1, 3, 3], &w);
        self.conv2d(&xp, &wt, None, Conv2d { stride: 1, padding: 0, groups: channels })
    }
}
