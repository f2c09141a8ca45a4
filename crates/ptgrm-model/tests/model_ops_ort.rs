//! The ONNX forms of the tricky ops, run in ONNX Runtime, against straightforward pure-Rust
//! computations written here from their definitions (not from the op compositions).

mod model_support;

use model_support::ref_ops::erf;
use model_support::{max_abs_diff, named, random, run};
use prost::Message;
use ptgrm_model::onnx_builder::{OnnxBuilder, Value};
use ptgrm_model::onnx_proto::DimSpec::{Fixed, Named};
use ptgrm_model::ops::{Init, Ops};

const TOL: f32 = 1e-4;

/// Builds a graph with dynamic-N/H/W inputs `x` (and more), one output `y`.
fn graph(inputs: &[(&str, usize)], f: impl FnOnce(&mut OnnxBuilder, &[Value]) -> Value) -> Vec<u8> {
    let mut b = OnnxBuilder::seeded(3);
    let vals: Vec<Value> = inputs.iter().map(|(n, c)| b.input(n, &[Named("N"), Fixed(*c), Named("H"), Named("W")])).collect();
    let y = f(&mut b, &vals);
    let dims: Vec<_> = (0..y.rank())
        .map(|i| match y.dim(i) {
            Some(d) => Fixed(d),
            None => Named(["N", "A", "B", "C"][i]),
        })
        .collect();
    b.output(&y, "y", &dims);
    b.finish("op_test").expect("graph builds").encode_to_vec()
}

fn idx(shape: &[usize], n: usize, c: usize, y: usize, x: usize) -> usize {
    ((n * shape[1] + c) * shape[2] + y) * shape[3] + x
}

#[test]
fn dynamic_conv_matches_per_pixel_kernels_with_replicate_padding() {
    let (n, c, h, w, k) = (2, 3, 5, 7, 3);
    let xs = [n, c, h, w];
    let ks = [n, c * k * k, h, w];
    let x = random(n * c * h * w, 1, -1.0, 1.0);
    let kern = random(n * c * k * k * h * w, 2, -1.0, 1.0);
    let model = graph(&[("x", c), ("k", c * k * k)], |b, v| b.dynamic_conv(&v[0], &v[1], c, k));
    let got = run(&model, &[named("x", &xs, x.clone()), named("k", &ks, kern.clone())], &["y"]);
    assert_eq!(got[0].0, xs.to_vec());
    let mut want = vec![0f32; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = 0.0;
                    for i in 0..k {
                        for j in 0..k {
                            let sy = (y as isize + i as isize - 1).clamp(0, h as isize - 1) as usize;
                            let sx = (xx as isize + j as isize - 1).clamp(0, w as isize - 1) as usize;
                            acc += kern[idx(&ks, b, ch * k * k + i * k + j, y, xx)] * x[idx(&xs, b, ch, sy, sx)];
                        }
                    }
                    want[idx(&xs, b, ch, y, xx)] = acc;
                }
            }
        }
    }
    let d = max_abs_diff(&got[0].1, &want);
    assert!(d <= TOL, "max abs diff {d}");
}

#[test]
fn coordinate_grid_spans_minus_one_to_one_at_any_size() {
    for (n, h, w) in [(2, 5, 7), (1, 1, 4), (1, 9, 1)] {
        let model = graph(&[("x", 3)], |b, v| b.coord_grid(&v[0]));
        let got = run(&model, &[named("x", &[n, 3, h, w], vec![0.0; n * 3 * h * w])], &["y"]);
        let shape = [n, 2, h, w];
        assert_eq!(got[0].0, shape.to_vec());
        let lin = |i: usize, len: usize| if len == 1 { -1.0 } else { -1.0 + 2.0 * i as f32 / (len - 1) as f32 };
        for b in 0..n {
            for y in 0..h {
                for x in 0..w {
                    assert!((got[0].1[idx(&shape, b, 0, y, x)] - lin(x, w)).abs() <= 1e-6, "x channel at {y},{x} ({h}x{w})");
                    assert!((got[0].1[idx(&shape, b, 1, y, x)] - lin(y, h)).abs() <= 1e-6, "y channel at {y},{x} ({h}x{w})");
                }
            }
        }
    }
}

/// Restormer MDTA core for one head per `heads`: softmax(norm(q) norm(k)^T * t) v.
#[test]
fn mdta_transposed_attention_matches_reference() {
    let (n, c, h, w, heads) = (2, 4, 3, 5, 2);
    let shape = [n, c, h, w];
    let q = random(n * c * h * w, 4, -1.0, 1.0);
    let k = random(n * c * h * w, 5, -1.0, 1.0);
    let v = random(n * c * h * w, 6, -1.0, 1.0);
    let temp = [0.7f32, 1.9];
    let model = graph(&[("q", c), ("k", c), ("v", c)], |b, vals| {
        let qs = b.split_heads(&vals[0], heads);
        let ks = b.split_heads(&vals[1], heads);
        let vs = b.split_heads(&vals[2], heads);
        let qn = b.l2_normalize(&qs, 3, 1e-12);
        let kn = b.l2_normalize(&ks, 3, 1e-12);
        let kt = b.transpose_last2(&kn);
        let a = b.matmul(&qn, &kt);
        let t = b.constant(&[1, heads, 1, 1], &temp);
        let a = b.mul(&a, &t);
        let a = b.softmax(&a, 3);
        let o = b.matmul(&a, &vs);
        b.merge_heads(&o, &vals[0])
    });
    let got = run(&model, &[named("q", &shape, q.clone()), named("k", &shape, k.clone()), named("v", &shape, v.clone())], &["y"]);
    assert_eq!(got[0].0, shape.to_vec());
    let (cph, hw) = (c / heads, h * w);
    let mut want = vec![0f32; q.len()];
    for b in 0..n {
        for hd in 0..heads {
            let row = |t: &[f32], i: usize| -> Vec<f64> {
                let base = (b * c + hd * cph + i) * hw;
                t[base..base + hw].iter().map(|&x| x as f64).collect()
            };
            let norm = |r: Vec<f64>| {
                let l = r.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                r.into_iter().map(|x| x / l).collect::<Vec<_>>()
            };
            for i in 0..cph {
                let qi = norm(row(&q, i));
                let logits: Vec<f64> =
                    (0..cph).map(|j| qi.iter().zip(norm(row(&k, j))).map(|(a, b)| a * b).sum::<f64>() * temp[hd] as f64).collect();
                let m = logits.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
                let s: f64 = e.iter().sum();
                for p in 0..hw {
                    let acc: f64 = (0..cph).map(|j| e[j] / s * row(&v, j)[p]).sum();
                    want[(b * c + hd * cph + i) * hw + p] = acc as f32;
                }
            }
        }
    }
    let d = max_abs_diff(&got[0].1, &want);
    assert!(d <= TOL, "max abs diff {d}");
}

#[test]
fn instance_norm_and_channel_layer_norm_match_reference() {
    let (n, c, h, w) = (2, 3, 4, 6);
    let shape = [n, c, h, w];
    let x = random(n * c * h * w, 7, -2.0, 3.0);
    let model = graph(&[("x", c)], |b, v| b.instance_norm(&v[0], 1e-5));
    let got = run(&model, &[named("x", &shape, x.clone())], &["y"]);
    let mut want = vec![0f32; x.len()];
    for plane in 0..n * c {
        let s = &x[plane * h * w..(plane + 1) * h * w];
        let mu = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
        let var = s.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / s.len() as f64;
        for (i, &v) in s.iter().enumerate() {
            want[plane * h * w + i] = ((v as f64 - mu) / (var + 1e-5).sqrt()) as f32;
        }
    }
    let d = max_abs_diff(&got[0].1, &want);
    assert!(d <= TOL, "instance norm max abs diff {d}");

    let lw = random(c, 8, 0.5, 1.5);
    let lb = random(c, 9, -0.5, 0.5);
    let model = graph(&[("x", c)], |b, v| {
        let wt = b.constant(&[1, c, 1, 1], &lw);
        let bs = b.constant(&[1, c, 1, 1], &lb);
        b.layer_norm_channels(&v[0], &wt, &bs, 1e-5)
    });
    let got = run(&model, &[named("x", &shape, x.clone())], &["y"]);
    for b in 0..n {
        for p in 0..h * w {
            let vals: Vec<f64> = (0..c).map(|ch| x[(b * c + ch) * h * w + p] as f64).collect();
            let mu = vals.iter().sum::<f64>() / c as f64;
            let var = vals.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / c as f64;
            for ch in 0..c {
                want[(b * c + ch) * h * w + p] = ((vals[ch] - mu) / (var + 1e-5).sqrt() * lw[ch] as f64 + lb[ch] as f64) as f32;
            }
        }
    }
    let d = max_abs_diff(&got[0].1, &want);
    assert!(d <= TOL, "layer norm max abs diff {d}");
}

/// PixelShuffle(r) moves input channel `c*r*r + i*r + j` to offset (i, j) of output channel c.
/// With a static channel count the builder writes it as a grouped ConvTranspose (faster in ONNX
/// Runtime's CPU provider than DepthToSpace); it must still be the exact permutation.
#[test]
fn pixel_shuffle_matches_pytorch_layout() {
    for (n, c, r, h, w) in [(2, 2, 2, 3, 5), (1, 3, 4, 3, 4), (1, 16, 2, 1, 1)] {
        let shape = [n, c * r * r, h, w];
        let x: Vec<f32> = (0..n * c * r * r * h * w).map(|i| i as f32).collect();
        let model = graph(&[("x", c * r * r)], |b, v| b.pixel_shuffle(&v[0], r));
        let proto = ptgrm_model::onnx_proto::ModelProto::decode(model.as_slice()).expect("decodes");
        let ops: Vec<_> = proto.graph.iter().flat_map(|g| &g.node).filter_map(|n| n.op_type.as_deref()).collect();
        assert!(ops.contains(&"ConvTranspose") && !ops.contains(&"DepthToSpace"), "r {r}: {ops:?}");
        let got = run(&model, &[named("x", &shape, x.clone())], &["y"]);
        let out = [n, c, h * r, w * r];
        assert_eq!(got[0].0, out.to_vec());
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h * r {
                    for xx in 0..w * r {
                        let src = idx(&shape, b, ch * r * r + (y % r) * r + xx % r, y / r, xx / r);
                        assert_eq!(got[0].1[idx(&out, b, ch, y, xx)], x[src], "r {r} at {b},{ch},{y},{xx}");
                    }
                }
            }
        }
    }
}

#[test]
fn bilinear_upsampling_matches_half_pixel_definition() {
    for factor in [2usize, 4] {
        let (n, c, h, w) = (1, 2, 3, 4);
        let x = random(n * c * h * w, 10, -1.0, 1.0);
        let model = graph(&[("x", c)], |b, v| b.upsample_bilinear(&v[0], c, factor));
        let got = run(&model, &[named("x", &[n, c, h, w], x.clone())], &["y"]);
        let out = [n, c, h * factor, w * factor];
        assert_eq!(got[0].0, out.to_vec());
        // Source coordinate (o + 0.5)/f - 0.5, clamped to the image: align_corners=False.
        let src = |o: usize, len: usize| -> (usize, usize, f32) {
            let s = ((o as f32 + 0.5) / factor as f32 - 0.5).clamp(0.0, (len - 1) as f32);
            let i0 = s.floor() as usize;
            (i0, (i0 + 1).min(len - 1), s - i0 as f32)
        };
        let mut want = vec![0f32; got[0].1.len()];
        for ch in 0..c {
            for y in 0..h * factor {
                for xx in 0..w * factor {
                    let (y0, y1, fy) = src(y, h);
                    let (x0, x1, fx) = src(xx, w);
                    let at = |yy, xq| x[idx(&[n, c, h, w], 0, ch, yy, xq)];
                    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                    let bot = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                    want[idx(&out, 0, ch, y, xx)] = top * (1.0 - fy) + bot * fy;
                }
            }
        }
        let d = max_abs_diff(&got[0].1, &want);
        assert!(d <= TOL, "factor {factor}: max abs diff {d}");
    }
}

#[test]
fn bilinear_resize_to_another_tensors_size_matches_half_pixel_definition() {
    // Up by a non-integer factor (a 3x4 prior grid onto a 7x10 latent) and down (to 2x3).
    let (n, c, h, w) = (2, 2, 3, 4);
    let x = random(n * c * h * w, 12, -1.0, 1.0);
    for (oh, ow) in [(7usize, 10usize), (2, 3)] {
        let model = graph(&[("x", c), ("like", 1)], |b, v| b.resize_bilinear(&v[0], &v[1]));
        let like = vec![0.0; n * oh * ow];
        let got = run(&model, &[named("x", &[n, c, h, w], x.clone()), named("like", &[n, 1, oh, ow], like)], &["y"]);
        let out = [n, c, oh, ow];
        assert_eq!(got[0].0, out.to_vec());
        let src = |o: usize, len: usize, len_out: usize| -> (usize, usize, f32) {
            let s = ((o as f32 + 0.5) * len as f32 / len_out as f32 - 0.5).clamp(0.0, (len - 1) as f32);
            let i0 = s.floor() as usize;
            (i0, (i0 + 1).min(len - 1), s - i0 as f32)
        };
        let mut want = vec![0f32; got[0].1.len()];
        for b in 0..n {
            for ch in 0..c {
                for y in 0..oh {
                    for xx in 0..ow {
                        let (y0, y1, fy) = src(y, h, oh);
                        let (x0, x1, fx) = src(xx, w, ow);
                        let at = |yy, xq| x[idx(&[n, c, h, w], b, ch, yy, xq)];
                        let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                        let bot = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                        want[idx(&out, b, ch, y, xx)] = top * (1.0 - fy) + bot * fy;
                    }
                }
            }
        }
        let d = max_abs_diff(&got[0].1, &want);
        assert!(d <= TOL, "{oh}x{ow}: max abs diff {d}");
    }
}

#[test]
fn gelu_clamp_and_broadcast_ops_match_reference() {
    let (n, c, h, w) = (2, 3, 2, 3);
    let x = random(n * c * h * w, 11, -4.0, 4.0);
    let model = graph(&[("x", c)], |b, v| {
        let g = b.gelu(&v[0]);
        let m = b.mean_hw(&v[0]);
        let e = b.expand_hw(&m, &v[0]);
        let s = b.add(&g, &e);
        b.clamp(&s, -1.0, f32::INFINITY)
    });
    let got = run(&model, &[named("x", &[n, c, h, w], x.clone())], &["y"]);
    let mut want = vec![0f32; x.len()];
    for plane in 0..n * c {
        let s = &x[plane * h * w..(plane + 1) * h * w];
        let mean = s.iter().sum::<f32>() / s.len() as f32;
        for (i, &v) in s.iter().enumerate() {
            let g = 0.5 * v as f64 * (1.0 + erf(v as f64 / 2f64.sqrt()));
            want[plane * h * w + i] = (g as f32 + mean).max(-1.0);
        }
    }
    let d = max_abs_diff(&got[0].1, &want);
    assert!(d <= TOL, "max abs diff {d}");
}

#[test]
fn builder_reports_shape_errors_and_missing_parameters() {
    let mut b = OnnxBuilder::seeded(0);
    let x = b.input("x", &[Named("N"), Fixed(3), Named("H"), Named("W")]);
    let w = b.param("c.weight", &[8, 4, 3, 3], Init::kaiming_uniform(36));
    let y = b.conv2d(&x, &w, None, ptgrm_model::ops::Conv2d::same(3));
    b.output(&y, "y", &[Named("N"), Fixed(8), Named("H"), Named("W")]);
    let err = b.finish("bad").unwrap_err();
    assert!(err.contains("input has 3 channels") && err.contains("c.weight"), "{err}");

    let mut b = OnnxBuilder::with_params(Default::default());
    let x = b.input("x", &[Named("N"), Fixed(3), Named("H"), Named("W")]);
    let w = b.param("c.weight", &[8, 3, 3, 3], Init::kaiming_uniform(27));
    let y = b.conv2d(&x, &w, None, ptgrm_model::ops::Conv2d::same(3));
    b.output(&y, "y", &[Named("N"), Fixed(8), Named("H"), Named("W")]);
    let err = b.finish("missing").unwrap_err();
    assert!(err.contains("parameter c.weight") && err.contains("missing"), "{err}");
}
