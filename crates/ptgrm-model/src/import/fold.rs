//! Folding an inference-mode BatchNorm into the convolution before it, so the exported graph is
//! a plain Conv: y = gamma (conv(x) + b - mean) / sqrt(var + eps) + beta
//!                 = conv'(x) + b'  with  w' = w * s,  b' = (b - mean) * s + beta,
//!                 s = gamma / sqrt(var + eps)  (per output channel).

use super::ImportError;
use super::state_dict::StateDict;
use crate::params::ParamValue;

/// PyTorch's BatchNorm2d default epsilon (torchvision MobileNetV2 keeps it).
pub const BN_EPS: f32 = 1e-5;

/// Reads conv `conv` (weight `[out, in/g, k, k]`, optional bias) and BatchNorm `bn`
/// (weight, bias, running_mean, running_var) from the state dict and returns the folded
/// (weight, bias). `in_per_group` and `k` are checked against the stored shape.
pub fn conv_bn(
    sd: &StateDict,
    conv: &str,
    bn: &str,
    out: usize,
    in_per_group: usize,
    k: usize,
) -> Result<(ParamValue, ParamValue), ImportError> {
    let shape = [out, in_per_group, k, k];
    let w = sd.get_shaped(&format!("{conv}.weight"), &shape)?;
    let bias = match sd.get(&format!("{conv}.bias")) {
        Ok(b) => Some(sd.get_shaped(&format!("{conv}.bias"), &[out]).map(|_| b.data.as_slice())?),
        Err(_) => None,
    };
    let get = |p: &str| sd.get_shaped(&format!("{bn}.{p}"), &[out]).map(|t| t.data.as_slice());
    let (gamma, beta, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
    Ok(fold(&w.data, &shape, bias, gamma, beta, mean, var, BN_EPS))
}

/// The arithmetic of [`conv_bn`] on plain slices.
#[allow(clippy::too_many_arguments)]
pub fn fold(
    weight: &[f32],
    shape: &[usize; 4],
    bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (ParamValue, ParamValue) {
    let out = shape[0];
    let per_out = shape[1] * shape[2] * shape[3];
    let mut w = weight.to_vec();
    let mut b = vec![0.0f32; out];
    for o in 0..out {
        let s = gamma[o] / (var[o] + eps).sqrt();
        for v in &mut w[o * per_out..(o + 1) * per_out] {
            *v *= s;
        }
        b[o] = (bias.map_or(0.0, |b| b[o]) - mean[o]) * s + beta[o];
    }
    (ParamValue { shape: shape.to_vec(), data: w }, ParamValue { shape: vec![out], data: b })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conv (1x1, 2 in -> 2 out) then BN, evaluated directly and folded, on one pixel.
    #[test]
    fn folded_conv_equals_conv_then_batchnorm() {
        let w = [0.5, -1.0, 2.0, 0.25];
        let bias = [0.1, -0.2];
        let (gamma, beta, mean, var) = ([1.5, 0.5], [0.3, -0.1], [0.2, 1.0], [4.0, 0.25]);
        let x = [0.7f32, -1.3];
        let (fw, fb) = fold(&w, &[2, 2, 1, 1], Some(&bias), &gamma, &beta, &mean, &var, 0.0);
        for o in 0..2 {
            let conv = w[o * 2] * x[0] + w[o * 2 + 1] * x[1] + bias[o];
            let want = gamma[o] * (conv - mean[o]) / var[o].sqrt() + beta[o];
            let got = fw.data[o * 2] * x[0] + fw.data[o * 2 + 1] * x[1] + fb.data[o];
            assert!((want - got).abs() < 1e-6, "channel {o}: {want} vs {got}");
        }
    }
}
