//! Shared by the model_* tests: ONNX Runtime access and a naive pure-Rust `Ops` backend used
//! as the reference the exported graphs are checked against.
#![allow(dead_code)]

pub mod ref_ops;

// ONNX Runtime loading ($PTGRM_ORT_DYLIB, else .deps/ort.path; one environment per process)
// is shared with the import tests.
#[path = "../import_support/mod.rs"]
mod import_support;
pub use import_support::ort_env;

pub fn session(model: &[u8]) -> ort::session::Session {
    ort::session::Session::builder(ort_env()).expect("session builder").commit_from_memory(model).expect("ONNX Runtime accepts the graph")
}

/// A named f32 tensor.
#[derive(Clone, Debug)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn named(name: &str, shape: &[usize], data: Vec<f32>) -> Named {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    Named { name: name.into(), shape: shape.to_vec(), data }
}

/// Runs `model` on the inputs; returns the named outputs (shape, data).
pub fn run(model: &[u8], inputs: &[Named], outputs: &[&str]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut s = session(model);
    let mut feed: Vec<(String, ort::session::SessionInputValue<'_>)> = Vec::new();
    for i in inputs {
        let t = ort::value::TensorRef::from_array_view((i.shape.clone(), &i.data[..])).expect("input tensor");
        feed.push((i.name.clone(), t.into()));
    }
    let result = s.run(feed).expect("inference");
    outputs
        .iter()
        .map(|name| {
            let (sh, d) = result[*name].try_extract_tensor::<f32>().expect("f32 output");
            (sh.iter().map(|&v| v as usize).collect(), d.to_vec())
        })
        .collect()
}

/// Deterministic pseudo-random values in [lo, hi).
pub fn random(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
