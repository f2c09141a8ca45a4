//! torchvision's ImageNet MobileNetV2 (width 1.0) as the default prior encoder G.
//!
//! Graph: `image` [N,3,H,W] in [0,1], any size -> anti-aliased resize to 224x224 -> ImageNet
//! mean/std -> MobileNetV2 features (BatchNorm folded into the convs) -> global average pool
//! -> 1280-d -> L2-normalize -> `prior` [N,1280]. With `with_logits`, a second output `logits`
//! [N,1000] applies the ImageNet classifier to the pooled (unnormalized) features; it exists to
//! check the import (top-1 class of a known photo), the prior bundles do not need it.

use super::ImportError;
use super::fold::conv_bn;
use super::state_dict::StateDict;
use crate::onnx_builder::{Dim, OnnxBuilder, attr_int};
use crate::onnx_proto::ModelProto;
use crate::ops::{Conv2d, Init, Ops};
use crate::params::ParamMap;
use ptgrm_bundle::io;

pub const PRIOR_DIM: usize = 1280;
pub const INPUT_SIZE: usize = 224;
/// Cells per side of the feature map at the 224 input (stride 32): the per-region prior's grid.
pub const GRID_CELLS: usize = INPUT_SIZE / 32;
pub const CLASSES: usize = 1000;
pub const LOGITS: &str = "logits";
const STEM: usize = 32;
const PREFILTER: usize = 4;
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One inverted-residual block: `features.{index}` in torchvision's state dict.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub index: usize,
    pub input: usize,
    pub output: usize,
    /// Expanded width; equal to `input` for the first block, which has no expansion conv.
    pub hidden: usize,
    pub stride: usize,
}

impl Block {
    fn expands(&self) -> bool {
        self.index != 1
    }

    fn residual(&self) -> bool {
        self.stride == 1 && self.input == self.output
    }
}

/// torchvision's table (expansion t, channels c, repeats n, first stride s), width 1.0.
pub fn blocks() -> Vec<Block> {
    const SETTINGS: [(usize, usize, usize, usize); 7] =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let mut out = Vec::new();
    let mut input = STEM;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let index = out.len() + 1;
            out.push(Block { index, input, output: c, hidden: input * t, stride: if i == 0 { s } else { 1 } });
            input = c;
        }
    }
    out
}

/// The folded parameters, named as [`features`] asks for them, from torchvision's state dict.
/// Every tensor's shape is checked against the architecture.
pub fn params(sd: &StateDict, with_classifier: bool) -> Result<ParamMap, ImportError> {
    let mut map = ParamMap::new();
    let mut put = |name: String, (w, b): (crate::params::ParamValue, crate::params::ParamValue)| {
        map.insert(format!("{name}.weight"), w);
        map.insert(format!("{name}.bias"), b);
    };
    put("features.0".into(), conv_bn(sd, "features.0.0", "features.0.1", STEM, 3, 3)?);
    for b in blocks() {
        let f = format!("features.{}.conv", b.index);
        // Sub-module numbering shifts by one when there is no expansion conv.
        let dw_at = if b.expands() {
            put(format!("features.{}.expand", b.index), conv_bn(sd, &format!("{f}.0.0"), &format!("{f}.0.1"), b.hidden, b.input, 1)?);
            1
        } else {
            0
        };
        put(format!("features.{}.depthwise", b.index), conv_bn(sd, &format!("{f}.{dw_at}.0"), &format!("{f}.{dw_at}.1"), b.hidden, 1, 3)?);
        put(
            format!("features.{}.project", b.index),
            conv_bn(sd, &format!("{f}.{}", dw_at + 1), &format!("{f}.{}", dw_at + 2), b.output, b.hidden, 1)?,
        );
    }
    let last = blocks().last().map_or(STEM, |b| b.output);
    put("features.18".into(), conv_bn(sd, "features.18.0", "features.18.1", PRIOR_DIM, last, 1)?);
    if with_classifier {
        map.insert("classifier.weight".into(), sd.get_shaped("classifier.1.weight", &[CLASSES, PRIOR_DIM])?.clone());
        map.insert("classifier.bias".into(), sd.get_shaped("classifier.1.bias", &[CLASSES])?.clone());
    }
    Ok(map)
}

fn conv<O: Ops>(o: &mut O, x: &O::T, name: &str, shape: [usize; 4], conv: Conv2d) -> O::T {
    let fan_in = shape[1] * shape[2] * shape[3];
    let w = o.param(&format!("{name}.weight"), &shape, Init::kaiming_uniform(fan_in));
    let b = o.param(&format!("{name}.bias"), &[shape[0]], Init::bias(fan_in));
    o.conv2d(x, &w, Some(&b), conv)
}

/// MobileNetV2's feature trunk on an ImageNet-normalized image: [N,3,H,W] -> [N,1280,H/32,W/32].
pub fn features<O: Ops>(o: &mut O, x: &O::T) -> O::T {
    let y = conv(o, x, "features.0", [STEM, 3, 3, 3], Conv2d::down(3));
    let mut y = o.relu6(&y);
    for b in blocks() {
        let mut h = y.clone();
        if b.expands() {
            h = conv(o, &h, &format!("features.{}.expand", b.index), [b.hidden, b.input, 1, 1], Conv2d::same(1));
            h = o.relu6(&h);
        }
        let dw = Conv2d { stride: b.stride, padding: 1, groups: b.hidden };
        h = conv(o, &h, &format!("features.{}.depthwise", b.index), [b.hidden, 1, 3, 3], dw);
        h = o.relu6(&h);
        h = conv(o, &h, &format!("features.{}.project", b.index), [b.output, b.hidden, 1, 1], Conv2d::same(1));
        y = if b.residual() { o.add(&y, &h) } else { h };
    }
    let last = blocks().last().map_or(STEM, |b| b.output);
    let y = conv(o, &y, "features.18", [PRIOR_DIM, last, 1, 1], Conv2d::same(1));
    o.relu6(&y)
}

/// `(x - mean) / std` per RGB channel.
pub fn imagenet_normalize<O: Ops>(o: &mut O, x: &O::T) -> O::T {
    let mean = o.constant(&[1, 3, 1, 1], &IMAGENET_MEAN);
    let inv_std: Vec<f32> = IMAGENET_STD.iter().map(|s| 1.0 / s).collect();
    let inv_std = o.constant(&[1, 3, 1, 1], &inv_std);
    let d = o.sub(x, &mean);
    o.mul(&d, &inv_std)
}

/// Scales the image so its mean over pixels and channels is `target` (clipped to [0, 1]; a black
/// image's gain is capped at `target / 1e-3`). Why: MobileNetV2 learnt ImageNet's exposures
/// (mean pixel about 0.45); a night capture at 1-5 % exposure is far outside them, so without
/// this the prior describes the exposure more than the scene.
pub fn normalize_exposure<O: Ops>(o: &mut O, x: &O::T, target: f32) -> O::T {
    let mean = o.mean_keepdim(x, &[1, 2, 3]);
    let mean = o.clamp(&mean, 1e-3, f32::MAX);
    let target = o.constant(&[1, 1, 1, 1], &[target]);
    let gain = o.div(&target, &mean);
    let y = o.mul(x, &gain);
    o.clamp(&y, 0.0, 1.0)
}

/// Builds the prior graph from torchvision's MobileNetV2 state dict; with `exposure_mean`, the
/// resized image is first brought to that mean ([`normalize_exposure`]).
///
/// With `grid`, the prior is per region: the 7x7 feature map before the pooling, each cell
/// L2-normalised alone, flattened channel-major to `[N, 1280 * 49]` (a refiner with
/// `prior_grid = 7` reads it; the bundle's manifest says `prior.grid = 7`).
pub fn build_prior(sd: &StateDict, with_logits: bool, exposure_mean: Option<f32>, grid: bool) -> Result<ModelProto, ImportError> {
    let mut b = OnnxBuilder::with_params(params(sd, with_logits)?);
    const N: Dim = Dim::Named("N");
    let x = b.input(io::IMAGE, &[N, Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")]);
    // Bilinear to 4x the input size, then a 4x4 box average: a cheap anti-aliased downscale
    // (opset 17 Resize has no antialias). Measured on 1600x1080 crops of mate photos, the prior
    // of 1-pixel-shifted frames drifts 3x less (1 - cosine ~0.001 vs ~0.003) than with a
    // direct bilinear resize; top-1 classes of 14 packaged photos are unchanged.
    let upsampled = b.resize_bilinear_to(&x, INPUT_SIZE * PREFILTER, INPUT_SIZE * PREFILTER);
    let resized = b.avg_pool(&upsampled, PREFILTER);
    let resized = match exposure_mean {
        Some(m) => normalize_exposure(&mut b, &resized, m),
        None => resized,
    };
    let normalized = imagenet_normalize(&mut b, &resized);
    let feats = features(&mut b, &normalized);
    let pooled = b.mean_hw(&feats);
    if grid {
        let cells = b.l2_normalize(&feats, 1, 1e-12);
        let len = PRIOR_DIM * GRID_CELLS * GRID_CELLS;
        let prior = b.node("Flatten", &[&cells.name], vec![attr_int("axis", 1)], vec![cells.dim(0), Some(len)]);
        b.output(&prior, io::PRIOR, &[N, Dim::Fixed(len)]);
    } else {
        let prior = b.l2_normalize(&pooled, 1, 1e-12);
        b.output(&prior, io::PRIOR, &[N, Dim::Fixed(PRIOR_DIM)]);
    }
    if with_logits {
        let w = b.param("classifier.weight", &[CLASSES, PRIOR_DIM], Init::Const(0.0));
        let bias = b.param("classifier.bias", &[CLASSES], Init::Const(0.0));
        let logits = b.linear(&pooled, &w, Some(&bias));
        b.output(&logits, LOGITS, &[N, Dim::Fixed(CLASSES)]);
    }
    b.finish("mobilenet_v2_prior").map_err(ImportError::Format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_matches_torchvision() {
        let b = blocks();
        assert_eq!(b.len(), 17, "features.1 ..= features.17");
        assert_eq!(b.iter().filter(|b| b.residual()).count(), 10);
        assert_eq!(b.iter().map(|b| b.stride).product::<usize>() * 2, 32, "total stride 32 with the stem");
        assert_eq!((b[1].input, b[1].hidden, b[1].output, b[1].stride), (16, 96, 24, 2));
    }

    #[test]
    fn missing_tensor_is_named() {
        let err = params(&StateDict::default(), false).unwrap_err().to_string();
        assert!(err.contains("features.0.0.weight"), "{err}");
    }

    #[test]
    fn seeded_trunk_builds_with_1280_channels_at_stride_32() {
        let mut b = OnnxBuilder::seeded(1);
        let x = b.input("image", &[Dim::Named("N"), Dim::Fixed(3), Dim::Fixed(224), Dim::Fixed(224)]);
        let f = features(&mut b, &x);
        assert_eq!(f.shape, vec![None, Some(1280), Some(7), Some(7)]);
        let n: usize = b.params().values().map(|p| p.numel()).sum();
        // torchvision MobileNetV2 without classifier has 2,223,872 parameters; folding its
        // 17,056 BatchNorm channels (weight + bias each) into one conv bias each removes 17,056.
        assert_eq!(n, 2_206_816);
        b.output(&f, "features", &[Dim::Named("N"), Dim::Fixed(1280), Dim::Fixed(7), Dim::Fixed(7)]);
        b.finish("trunk").unwrap();
    }
}
