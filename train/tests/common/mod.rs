//! Shared helpers: running exported graphs with ONNX Runtime, random inputs.
#![allow(dead_code)]

use ort::session::Session;
use ort::value::TensorRef;
use ptgrm::providers::{Provider, ProviderSettings, build_session};
use ptgrm_train::backend::Backend;
use ptgrm_train::fit::FitOptions;
use ptgrm_train::rng::Rng;
use std::path::Path;

pub fn session(bytes: &[u8]) -> Session {
    build_session(bytes, Provider::Cpu, &ProviderSettings::default(), None)
        .expect("ONNX Runtime session (set ORT_DYLIB_PATH or run scripts/setup.sh)")
}

/// Runs `session` with named f32 inputs of the given shapes; returns the named outputs.
pub fn run(session: &mut Session, inputs: &[(&str, Vec<usize>, &[f32])], outputs: &[&str]) -> Vec<Vec<f32>> {
    let values: Vec<(String, ort::session::SessionInputValue)> =
        inputs.iter().map(|(n, s, d)| (n.to_string(), TensorRef::from_array_view((s.clone(), *d)).unwrap().into())).collect();
    let out = session.run(values).unwrap();
    outputs.iter().map(|o| out[*o].try_extract_tensor::<f32>().unwrap().1.to_vec()).collect()
}

pub fn random(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| lo + (hi - lo) * r.uniform() as f32).collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A tiny denoise recipe on a frozen ONNX F at `base` (no prior): R small enough to train in
/// a second. `data_extra` and `[[degradation]]` `sigma` vary per test.
pub fn tiny_external_recipe(
    root: &std::path::Path,
    name: &str,
    base: &str,
    role: &str,
    data_extra: &str,
    sigma: [u32; 2],
    steps: u32,
    val_every: u32,
) -> String {
    format!(
        r#"
name = "{name}"
task = "denoise"
seed = 2
[model.refiner]
nf = 8
prior_hidden = 8
prior_embed = 4
pos_channels = 4
restormer_blocks = 1
ca_hidden = 4
decoder_channels = 16
prior_dim = 4
[base]
kind = "onnx"
path = "{root}/{base}"
third_party = {{ role = "{role}", package = "test", version = "0", file = "{base}", licence = "MIT", sha256 = "00" }}
[prior]
kind = "none"
[data]
train = ["{root}/train"]
val = ["{root}/val"]
crop = 16
prior_view = 24
val_crop = 0
{data_extra}
[[degradation]]
kind = "gaussian_noise"
sigma = [{lo}, {hi}]
[train]
steps = {steps}
batch = 2
lr = 1e-3
val_every = {val_every}
"#,
        root = root.display(),
        lo = sigma[0],
        hi = sigma[1],
    )
}

/// A quiet, one-feed-thread `train fit` of `recipe` into `out` on the build's default backend,
/// from the start; tests set the fields they exercise with `..fit_options(..)`.
pub fn fit_options<'a>(recipe: Option<&'a Path>, out: &'a Path) -> FitOptions<'a> {
    FitOptions {
        recipe,
        out,
        resume: false,
        stop_after: None,
        extend_steps: None,
        backend: Backend::default_for_build(),
        feed_threads: 1,
        quiet: true,
    }
}
