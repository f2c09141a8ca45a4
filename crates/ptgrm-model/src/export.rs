//! Graph export: the networks of [`crate::base`] and [`crate::ptgrm`] recorded by the ONNX
//! builder into the bundle's graph roles, with the tensor names of
//! [`ptgrm_bundle::io`] and dynamic N, H, W.

use crate::base::{BaseConfig, base_forward};
use crate::joint::joint_forward;
use crate::layers::linear;
use crate::onnx_builder::{OnnxBuilder, ParamSource, attr_int};
use crate::onnx_proto::DimSpec::{self, Fixed, Named};
use crate::ops::{Conv2d, Ops};
use crate::params::{ParamMap, count_prefix};
use crate::ptgrm::{RefinerConfig, refiner_forward};
use prost::Message;
use ptgrm_bundle::io;
use serde::{Deserialize, Serialize};

/// F (optional: None when F is an external network) and R.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub base: Option<BaseConfig>,
    #[serde(default)]
    pub refiner: RefinerConfig,
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(b) = &self.base {
            b.validate()?;
        }
        self.refiner.validate()?;
        match crate::joint::fused_upsampling_error(self.base.as_ref(), &self.refiner) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// H and W of every graph input must be multiples of this.
    pub fn pad_multiple(&self) -> usize {
        let r = self.refiner.pad_multiple();
        match &self.base {
            Some(b) => lcm(b.pad_multiple(), r),
            None => r,
        }
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

/// An encoded ONNX graph and what went into it.
#[derive(Clone, Debug)]
pub struct Graph {
    pub bytes: Vec<u8>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The parameters the graph holds (name -> value).
    pub params: ParamMap,
}

impl Graph {
    pub fn parameter_count(&self) -> u64 {
        crate::params::count(&self.params)
    }
}

const N: DimSpec = Named("N");
const H: DimSpec = Named("H");
const W: DimSpec = Named("W");
const IMAGE_DIMS: [DimSpec; 4] = [N, Fixed(3), H, W];

fn finish(b: OnnxBuilder, name: &str, inputs: &[&str], outputs: &[&str]) -> Result<Graph, String> {
    let params = b.params().clone();
    let model = b.finish(name)?;
    Ok(Graph {
        bytes: model.encode_to_vec(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        params,
    })
}

/// F alone: `image` -> `base`.
pub fn base_graph(cfg: &BaseConfig, params: ParamSource) -> Result<Graph, String> {
    cfg.validate()?;
    let mut b = OnnxBuilder::new(params);
    let image = b.input(io::IMAGE, &IMAGE_DIMS);
    b.set_scope("base");
    let out = base_forward(&mut b, cfg, &image);
    b.output(&out, io::BASE, &IMAGE_DIMS);
    finish(b, "ptgrm_base", &[io::IMAGE], &[io::BASE])
}

/// R alone: (`restored`, `degraded`, `prior`) -> `refined`.
pub fn refiner_graph(cfg: &RefinerConfig, params: ParamSource) -> Result<Graph, String> {
    cfg.validate()?;
    if cfg.fused_upsampling {
        return Err("a refiner with fused_upsampling exists only inside a merged graph (F and R together)".into());
    }
    let mut b = OnnxBuilder::new(params);
    let restored = b.input(io::RESTORED, &IMAGE_DIMS);
    let degraded = b.input(io::DEGRADED, &IMAGE_DIMS);
    let prior = b.input(io::PRIOR, &[N, Fixed(cfg.prior_dim)]);
    b.set_scope("refiner");
    let out = refiner_forward(&mut b, cfg, &restored, &degraded, &prior);
    b.output(&out, io::REFINED, &IMAGE_DIMS);
    finish(b, "ptgrm_refiner", &[io::RESTORED, io::DEGRADED, io::PRIOR], &[io::REFINED])
}

/// F and R in one graph: (`image`, `prior`) -> (`refined`, `base`).
pub fn merged_graph(base: &BaseConfig, refiner: &RefinerConfig, params: ParamSource) -> Result<Graph, String> {
    base.validate()?;
    refiner.validate()?;
    if let Some(e) = crate::joint::fused_upsampling_error(Some(base), refiner) {
        return Err(e);
    }
    let mut b = OnnxBuilder::new(params);
    let image = b.input(io::IMAGE, &IMAGE_DIMS);
    let prior = b.input(io::PRIOR, &[N, Fixed(refiner.prior_dim)]);
    let (restored, refined) = joint_forward(&mut b, base, refiner, &image, &prior);
    b.output(&refined, io::REFINED, &IMAGE_DIMS);
    b.output(&restored, io::BASE, &IMAGE_DIMS);
    finish(b, "ptgrm_merged", &[io::IMAGE, io::PRIOR], &[io::REFINED, io::BASE])
}

/// A tiny untrained prior encoder for tests: `image` -> global average pool -> linear 3->D ->
/// L2 normalization -> `prior` `[N, D]`.
pub fn test_prior_graph(dim: usize, params: ParamSource) -> Result<Graph, String> {
    if dim == 0 {
        return Err("prior dim must be at least 1".into());
    }
    let mut b = OnnxBuilder::new(params);
    let image = b.input(io::IMAGE, &IMAGE_DIMS);
    let pooled = b.mean_hw(&image);
    let v = linear(&mut b, "prior.fc", &pooled, 3, dim);
    let v = b.l2_normalize(&v, 1, 1e-12);
    b.output(&v, io::PRIOR, &[N, Fixed(dim)]);
    finish(b, "ptgrm_test_prior", &[io::IMAGE], &[io::PRIOR])
}

/// A per-region test prior of `cells` x `cells` cells of `cell_dim` values: the image resized
/// to the grid, a seeded 1x1 conv 3 -> `cell_dim`, each cell L2-normalised, flattened
/// channel-major to `[N, cell_dim * cells²]` (the layout of a MobileNetV2 grid prior).
pub fn test_grid_prior_graph(cells: usize, cell_dim: usize, params: ParamSource) -> Result<Graph, String> {
    if cells == 0 || cell_dim == 0 {
        return Err("grid prior needs at least one cell of one value".into());
    }
    let mut b = OnnxBuilder::new(params);
    let image = b.input(io::IMAGE, &IMAGE_DIMS);
    let small = b.resize_bilinear_to(&image, cells, cells);
    let v = crate::layers::conv(&mut b, "prior.cell", &small, 3, cell_dim, 1, Conv2d::same(1), true);
    let v = b.l2_normalize(&v, 1, 1e-12);
    let len = cell_dim * cells * cells;
    let flat = b.node("Flatten", &[&v.name], vec![attr_int("axis", 1)], vec![v.dim(0), Some(len)]);
    b.output(&flat, io::PRIOR, &[N, Fixed(len)]);
    finish(b, "ptgrm_test_grid_prior", &[io::IMAGE], &[io::PRIOR])
}

/// Initial parameters of F (if built in) and R, deterministic in `seed`: the same values the
/// trainer gets from [`crate::params::init_value`] inside its backend.
pub fn init_params(cfg: &ModelConfig, seed: u64) -> Result<ParamMap, String> {
    cfg.validate()?;
    match &cfg.base {
        // A fused refiner has no graph of its own; the merged graph holds both networks.
        Some(base) if cfg.refiner.fused_upsampling => Ok(merged_graph(base, &cfg.refiner, ParamSource::Seeded(seed))?.params),
        Some(base) => {
            let mut params = refiner_graph(&cfg.refiner, ParamSource::Seeded(seed))?.params;
            params.extend(base_graph(base, ParamSource::Seeded(seed))?.params);
            Ok(params)
        }
        None => Ok(refiner_graph(&cfg.refiner, ParamSource::Seeded(seed))?.params),
    }
}

/// Trainable parameter counts (base, refiner); base is 0 for an external F.
pub fn parameter_counts(cfg: &ModelConfig) -> Result<(u64, u64), String> {
    let p = init_params(cfg, 0)?;
    Ok((count_prefix(&p, "base."), count_prefix(&p, "refiner.")))
}
