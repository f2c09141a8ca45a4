//! `RefOps`: the op set computed with plain loops on row-major f32 tensors (f64 accumulation).
//! Slow and obvious on purpose: it is the reference the ONNX graphs are compared with.

use ptgrm_model::ops::{Conv2d, Init, Ops};
use ptgrm_model::params::{ParamMap, init_value};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: &[usize], data: Vec<f32>) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?}");
        Tensor { shape: shape.to_vec(), data }
    }

    fn strides(shape: &[usize]) -> Vec<usize> {
        let mut s = vec![1; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * shape[i + 1];
        }
        s
    }

    fn at4(&self, n: usize, c: usize, y: usize, x: usize) -> f32 {
        let s = &self.shape;
        self.data[((n * s[1] + c) * s[2] + y) * s[3] + x]
    }

    fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|&v| f(v)).collect() }
    }
}

/// Parameters come from `init_value(seed)` unless given.
pub struct RefOps {
    pub seed: u64,
    pub given: ParamMap,
}

impl RefOps {
    pub fn seeded(seed: u64) -> RefOps {
        RefOps { seed, given: ParamMap::new() }
    }

    fn zip(&self, a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
        assert_eq!(a.shape.len(), b.shape.len(), "same-rank broadcasting");
        if a.shape == b.shape {
            let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
            return Tensor { shape: a.shape.clone(), data };
        }
        let shape: Vec<usize> = a.shape.iter().zip(&b.shape).map(|(&p, &q)| p.max(q)).collect();
        let ia = broadcast_offsets(&a.shape, &shape);
        let ib = broadcast_offsets(&b.shape, &shape);
        let data = ia.iter().zip(&ib).map(|(&i, &j)| f(a.data[i], b.data[j])).collect();
        Tensor { shape, data }
    }

    fn reduce(&self, x: &Tensor, axes: &[usize], mean: bool) -> Tensor {
        let mut shape = x.shape.clone();
        for &a in axes {
            shape[a] = 1;
        }
        let mut acc = vec![0f64; shape.iter().product()];
        for (&o, &v) in broadcast_offsets(&shape, &x.shape).iter().zip(&x.data) {
            acc[o] += v as f64;
        }
        let count: usize = axes.iter().map(|&a| x.shape[a]).product();
        let data = acc.iter().map(|&v| if mean { (v / count as f64) as f32 } else { v as f32 }).collect();
        Tensor { shape, data }
    }
}

/// For each element of `out` (row-major), the flat index of the element of a tensor of
/// shape `small` (same rank, dims equal or 1) that broadcasts onto it.
fn broadcast_offsets(small: &[usize], out: &[usize]) -> Vec<usize> {
    let strides = Tensor::strides(small);
    let mut offs = vec![0usize];
    for d in 0..out.len() {
        let step = if small[d] == 1 { 0 } else { strides[d] };
        offs = offs.iter().flat_map(|&o| (0..out[d]).map(move |i| o + i * step)).collect();
    }
    offs
}

/// erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 { 1.0 - r } else { r - 1.0 }
}

impl Ops for RefOps {
    type T = Tensor;

    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Tensor {
        match self.given.get(name) {
            Some(p) => Tensor::new(&p.shape, p.data.clone()),
            None => {
                let p = init_value(name, shape, init, self.seed);
                Tensor::new(&p.shape, p.data)
            }
        }
    }

    fn constant(&mut self, shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape, data.to_vec())
    }

    fn conv2d(&mut self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, conv: Conv2d) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (cout, cig, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
        assert_eq!(cin, cig * conv.groups);
        let (p, s) = (conv.padding as isize, conv.stride);
        let oh = (h + 2 * conv.padding - kh) / s + 1;
        let ow = (wd + 2 * conv.padding - kw) / s + 1;
        let cog = cout / conv.groups;
        let mut out = vec![0f32; n * cout * oh * ow];
        for b_ in 0..n {
            for co in 0..cout {
                let g = co / cog;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b.data[co] as f64);
                        for ci in 0..cig {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * s + ky) as isize - p;
                                    let ix = (ox * s + kx) as isize - p;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let xv = x.at4(b_, g * cig + ci, iy as usize, ix as usize) as f64;
                                    acc += xv * w.data[((co * cig + ci) * kh + ky) * kw + kx] as f64;
                                }
                            }
                        }
                        out[((b_ * cout + co) * oh + oy) * ow + ox] = acc as f32;
                    }
                }
            }
        }
        Tensor::new(&[n, cout, oh, ow], out)
    }

    fn pad_replicate(&mut self, x: &Tensor, pad: usize) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (h + 2 * pad, w + 2 * pad);
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for b in 0..n {
            for ch in 0..c {
                for y in 0..oh {
                    for xx in 0..ow {
                        let sy = (y as isize - pad as isize).clamp(0, h as isize - 1) as usize;
                        let sx = (xx as isize - pad as isize).clamp(0, w as isize - 1) as usize;
                        out.push(x.at4(b, ch, sy, sx));
                    }
                }
            }
        }
        Tensor::new(&[n, c, oh, ow], out)
    }

    fn avg_pool(&mut self, x: &Tensor, k: usize) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] / k, x.shape[3] / k);
        let mut out = Vec::with_capacity(n * c * h * w);
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = 0f64;
                        for i in 0..k {
                            for j in 0..k {
                                acc += x.at4(b, ch, y * k + i, xx * k + j) as f64;
                            }
                        }
                        out.push((acc / (k * k) as f64) as f32);
                    }
                }
            }
        }
        Tensor::new(&[n, c, h, w], out)
    }

    fn pixel_shuffle(&mut self, x: &Tensor, r: usize) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1] / (r * r), x.shape[2], x.shape[3]);
        let mut out = vec![0f32; n * c * h * r * w * r];
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h * r {
                    for xx in 0..w * r {
                        let src = ch * r * r + (y % r) * r + xx % r;
                        out[((b * c + ch) * h * r + y) * w * r + xx] = x.at4(b, src, y / r, xx / r);
                    }
                }
            }
        }
        Tensor::new(&[n, c, h * r, w * r], out)
    }

    fn add(&mut self, a: &Tensor, b: &Tensor) -> Tensor {
        self.zip(a, b, |x, y| x + y)
    }

    fn sub(&mut self, a: &Tensor, b: &Tensor) -> Tensor {
        self.zip(a, b, |x, y| x - y)
    }

    fn mul(&mut self, a: &Tensor, b: &Tensor) -> Tensor {
        self.zip(a, b, |x, y| x * y)
    }

    fn div(&mut self, a: &Tensor, b: &Tensor) -> Tensor {
        self.zip(a, b, |x, y| x / y)
    }

    fn add_scalar(&mut self, x: &Tensor, s: f32) -> Tensor {
        x.map(|v| v + s)
    }

    fn mul_scalar(&mut self, x: &Tensor, s: f32) -> Tensor {
        x.map(|v| v * s)
    }

    fn leaky_relu(&mut self, x: &Tensor, slope: f32) -> Tensor {
        x.map(|v| if v >= 0.0 { v } else { slope * v })
    }

    fn relu(&mut self, x: &Tensor) -> Tensor {
        x.map(|v| v.max(0.0))
    }

    fn sigmoid(&mut self, x: &Tensor) -> Tensor {
        x.map(|v| (1.0 / (1.0 + (-(v as f64)).exp())) as f32)
    }

    fn erf(&mut self, x: &Tensor) -> Tensor {
        x.map(|v| erf(v as f64) as f32)
    }

    fn sqrt(&mut self, x: &Tensor) -> Tensor {
        x.map(f32::sqrt)
    }

    fn clamp(&mut self, x: &Tensor, lo: f32, hi: f32) -> Tensor {
        x.map(|v| v.max(lo).min(hi))
    }

    fn mean_keepdim(&mut self, x: &Tensor, axes: &[usize]) -> Tensor {
        self.reduce(x, axes, true)
    }

    fn sum_keepdim(&mut self, x: &Tensor, axes: &[usize]) -> Tensor {
        self.reduce(x, axes, false)
    }

    fn softmax(&mut self, x: &Tensor, axis: usize) -> Tensor {
        let mut shape = x.shape.clone();
        shape[axis] = 1;
        let offs = broadcast_offsets(&shape, &x.shape);
        let mut mx = vec![f32::NEG_INFINITY; shape.iter().product()];
        for (&o, &v) in offs.iter().zip(&x.data) {
            mx[o] = mx[o].max(v);
        }
        let max = Tensor::new(&shape, mx);
        let shifted = self.sub(x, &max);
        let e = shifted.map(|v| (v as f64).exp() as f32);
        let s = self.sum_keepdim(&e, &[axis]);
        self.div(&e, &s)
    }

    fn matmul(&mut self, a: &Tensor, b: &Tensor) -> Tensor {
        let (n, h, m, k) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3]);
        let p = b.shape[3];
        assert_eq!(b.shape[2], k);
        let mut out = vec![0f32; n * h * m * p];
        for bh in 0..n * h {
            for i in 0..m {
                for j in 0..p {
                    let acc: f64 = (0..k).map(|t| a.data[(bh * m + i) * k + t] as f64 * b.data[(bh * k + t) * p + j] as f64).sum();
                    out[(bh * m + i) * p + j] = acc as f32;
                }
            }
        }
        Tensor::new(&[n, h, m, p], out)
    }

    fn transpose_last2(&mut self, x: &Tensor) -> Tensor {
        let (n, h, r, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let mut out = vec![0f32; x.data.len()];
        for bh in 0..n * h {
            for i in 0..r {
                for j in 0..c {
                    out[(bh * c + j) * r + i] = x.data[(bh * r + i) * c + j];
                }
            }
        }
        Tensor::new(&[n, h, c, r], out)
    }

    fn concat(&mut self, xs: &[&Tensor]) -> Tensor {
        let n = xs[0].shape[0];
        let inner: Vec<usize> = xs.iter().map(|x| x.data.len() / n).collect();
        let mut data = Vec::new();
        for b in 0..n {
            for (x, &len) in xs.iter().zip(&inner) {
                data.extend_from_slice(&x.data[b * len..(b + 1) * len]);
            }
        }
        let mut shape = xs[0].shape.clone();
        shape[1] = xs.iter().map(|x| x.shape[1]).sum();
        Tensor::new(&shape, data)
    }

    fn slice_channels(&mut self, x: &Tensor, start: usize, end: usize) -> Tensor {
        let n = x.shape[0];
        let plane: usize = x.shape[2..].iter().product();
        let c = x.shape[1];
        let mut data = Vec::new();
        for b in 0..n {
            data.extend_from_slice(&x.data[(b * c + start) * plane..(b * c + end) * plane]);
        }
        let mut shape = x.shape.clone();
        shape[1] = end - start;
        Tensor::new(&shape, data)
    }

    fn split_heads(&mut self, x: &Tensor, heads: usize) -> Tensor {
        let s = &x.shape;
        Tensor::new(&[s[0], heads, s[1] / heads, s[2] * s[3]], x.data.clone())
    }

    fn merge_heads(&mut self, x: &Tensor, like: &Tensor) -> Tensor {
        Tensor::new(&[x.shape[0], x.shape[1] * x.shape[2], like.shape[2], like.shape[3]], x.data.clone())
    }

    fn mean_hw(&mut self, x: &Tensor) -> Tensor {
        let m = self.reduce(x, &[2, 3], true);
        Tensor::new(&[x.shape[0], x.shape[1]], m.data)
    }

    fn reshape(&mut self, x: &Tensor, shape: &[usize]) -> Tensor {
        Tensor::new(shape, x.data.clone())
    }

    fn unsqueeze_hw(&mut self, v: &Tensor) -> Tensor {
        Tensor::new(&[v.shape[0], v.shape[1], 1, 1], v.data.clone())
    }

    fn expand_hw(&mut self, v: &Tensor, like: &Tensor) -> Tensor {
        let (h, w) = (like.shape[2], like.shape[3]);
        let data = v.data.iter().flat_map(|&x| std::iter::repeat_n(x, h * w)).collect();
        Tensor::new(&[v.shape[0], v.shape[1], h, w], data)
    }

    fn unflatten_hw(&mut self, v: &Tensor, h: usize, w: usize) -> Tensor {
        Tensor::new(&[v.shape[0], v.shape[1] / (h * w), h, w], v.data.clone())
    }

    fn resize_bilinear(&mut self, x: &Tensor, like: &Tensor) -> Tensor {
        let (n, c, ih, iw) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (like.shape[2], like.shape[3]);
        // Half-pixel centres, source index clamped to the image (PyTorch align_corners=False).
        let taps = |o: usize, size_in: usize, size_out: usize| -> (usize, usize, f64) {
            let f = ((o as f64 + 0.5) * size_in as f64 / size_out as f64 - 0.5).clamp(0.0, (size_in - 1) as f64);
            let a = f as usize;
            (a, (a + 1).min(size_in - 1), f - a as f64)
        };
        let mut data = Vec::with_capacity(n * c * oh * ow);
        for plane in x.data.chunks_exact(ih * iw) {
            for y in 0..oh {
                let (y0, y1, wy) = taps(y, ih, oh);
                for xo in 0..ow {
                    let (x0, x1, wx) = taps(xo, iw, ow);
                    let at = |yy: usize, xx: usize| plane[yy * iw + xx] as f64;
                    let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                    let bot = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                    data.push((top * (1.0 - wy) + bot * wy) as f32);
                }
            }
        }
        Tensor::new(&[n, c, oh, ow], data)
    }

    fn linear(&mut self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
        let (n, fin, fout) = (x.shape[0], x.shape[1], w.shape[0]);
        let mut out = vec![0f32; n * fout];
        for i in 0..n {
            for o in 0..fout {
                let acc: f64 = (0..fin).map(|k| x.data[i * fin + k] as f64 * w.data[o * fin + k] as f64).sum();
                out[i * fout + o] = (acc + b.map_or(0.0, |b| b.data[o] as f64)) as f32;
            }
        }
        Tensor::new(&[n, fout], out)
    }

    fn coord_grid(&mut self, like: &Tensor) -> Tensor {
        let (n, h, w) = (like.shape[0], like.shape[2], like.shape[3]);
        let coord = |i: usize, len: usize| -1.0 + 2.0 * i as f32 / (len.max(2) - 1) as f32;
        let mut data = Vec::with_capacity(n * 2 * h * w);
        for _ in 0..n {
            for y in 0..h {
                for x in 0..w {
                    data.push(coord(x, w));
                    let _ = y;
                }
            }
            for y in 0..h {
                for _ in 0..w {
                    data.push(coord(y, h));
                }
            }
        }
        Tensor::new(&[n, 2, h, w], data)
    }
}
