//! Shared helpers: running exported graphs with ONNX Runtime, random inputs.
#![allow(dead_code)]

use ort::session::Session;
use ort::value::TensorRef;
use ptgrm::providers::{build_session, Provider, ProviderSettings};
use ptgrm_train::rng::Rng;

pub fn session(bytes: &[u8]) -> Session {
    build_session(bytes, Provider::Cpu, &ProviderSettings::default(), None).expect("ONNX Runtime session (set ORT_DYLIB_PATH or run scripts/setup.sh)")
}

/// Runs `session` with named f32 inputs of the given shapes; returns the named outputs.
pub fn run(session: &mut Session, inputs: &[(&str, Vec<usize>, &[f32])], outputs: &[&str]) -> Vec<Vec<f32>> {
    let values: Vec<(String, ort::session::SessionInputValue)> = inputs
        .iter()
        .map(|(n, s, d)| (n.to_string(), TensorRef::from_array_view((s.clone(), *d)).unwrap().into()))
        .collect();
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
