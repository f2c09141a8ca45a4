//! Parameterised layers shared by the networks: each asks the backend for its parameters by
//! name (`{name}.weight`, `{name}.bias`) and applies one op.

use crate::ops::{Conv2d, Init, Ops};

/// `x` and `conv` as a convolution reads them: with `replicate`, the edge repeated around `x`
/// and the conv unpadded (so a flat input gives a flat output up to the frame's edge); otherwise
/// as they are (zero padding).
pub fn padded<O: Ops>(o: &mut O, replicate: bool, x: &O::T, conv: Conv2d) -> (O::T, Conv2d) {
    if replicate && conv.padding > 0 { (o.pad_replicate(x, conv.padding), Conv2d { padding: 0, ..conv }) } else { (x.clone(), conv) }
}

/// Conv layer with PyTorch default init; `bias` adds `{name}.bias`.
pub fn conv<O: Ops>(o: &mut O, name: &str, x: &O::T, cin: usize, cout: usize, k: usize, conv: Conv2d, bias: bool) -> O::T {
    let fan_in = cin / conv.groups * k * k;
    let w = o.param(&format!("{name}.weight"), &[cout, cin / conv.groups, k, k], Init::kaiming_uniform(fan_in));
    let b = bias.then(|| o.param(&format!("{name}.bias"), &[cout], Init::bias(fan_in)));
    o.conv2d(x, &w, b.as_ref(), conv)
}

/// k x k conv with bias, weight and bias initialised to zero: a head that starts with a
/// constant output (so a refiner starts from a known function of its inputs).
pub fn zero_conv<O: Ops>(o: &mut O, name: &str, x: &O::T, cin: usize, cout: usize, k: usize, conv: Conv2d) -> O::T {
    let w = o.param(&format!("{name}.weight"), &[cout, cin / conv.groups, k, k], Init::Const(0.0));
    let b = o.param(&format!("{name}.bias"), &[cout], Init::Const(0.0));
    o.conv2d(x, &w, Some(&b), conv)
}

/// Linear layer `[N, fin]` -> `[N, fout]` with bias.
pub fn linear<O: Ops>(o: &mut O, name: &str, x: &O::T, fin: usize, fout: usize) -> O::T {
    let w = o.param(&format!("{name}.weight"), &[fout, fin], Init::kaiming_uniform(fin));
    let b = o.param(&format!("{name}.bias"), &[fout], Init::bias(fin));
    o.linear(x, &w, Some(&b))
}

/// Linear layer `[N, fin]` -> `[N, fout]` with weight and bias initialised to zero: a part added
/// to a trained model that starts by changing nothing.
pub fn zero_linear<O: Ops>(o: &mut O, name: &str, x: &O::T, fin: usize, fout: usize) -> O::T {
    let w = o.param(&format!("{name}.weight"), &[fout, fin], Init::Const(0.0));
    let b = o.param(&format!("{name}.bias"), &[fout], Init::Const(0.0));
    o.linear(x, &w, Some(&b))
}

/// Channel LayerNorm with weight 1 / bias 0 init, parameters `[1, C, 1, 1]`.
pub fn layer_norm<O: Ops>(o: &mut O, name: &str, x: &O::T, c: usize) -> O::T {
    let w = o.param(&format!("{name}.weight"), &[1, c, 1, 1], Init::Const(1.0));
    let b = o.param(&format!("{name}.bias"), &[1, c, 1, 1], Init::Const(0.0));
    o.layer_norm_channels(x, &w, &b, 1e-5)
}
