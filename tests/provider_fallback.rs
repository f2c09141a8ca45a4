//! The GPU build of ONNX Runtime (CUDA and TensorRT providers present) on a machine without a
//! GPU driver: `auto` must end on CPU and say why; an explicit GPU provider must be an error.
//! Own test binary: ONNX Runtime is loaded once per process and this one loads the GPU build.

use ptgrm::{Engine, EngineOptions, ErrorKind, Provider, ProviderRequest};
use ptgrm_model::test_bundle::{TestBundleOptions, write_test_bundle};
use std::path::PathBuf;

fn gpu_runtime() -> PathBuf {
    let p = std::env::var_os("PTGRM_ORT_GPU_DYLIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".deps/onnxruntime-gpu/lib/libonnxruntime.so.1"));
    assert!(p.exists(), "{} missing: run `bash scripts/setup.sh --gpu-libs`", p.display());
    p
}

#[test]
fn gpu_build_without_a_driver_falls_back_to_cpu_with_reasons() {
    let dir = std::env::temp_dir().join(format!("ptgrm-fallback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_test_bundle(&dir, &TestBundleOptions::default()).unwrap();
    let base = EngineOptions { ort_library: Some(gpu_runtime()), threads: 1, ..Default::default() };

    let e = Engine::load(&dir, &base).unwrap();
    let providers = ptgrm::ortlib::available_providers().unwrap();
    assert!(providers.iter().any(|p| p == "CUDAExecutionProvider"), "the GPU build lists CUDA: {providers:?}");
    assert_eq!(e.active_provider(), Provider::Cpu);
    let log = e.provider_log().join("\n");
    assert!(log.contains("tensorrt unavailable, falling back"), "{log}");
    assert!(log.contains("cuda unavailable, falling back"), "{log}");

    for req in [ProviderRequest::Cuda, ProviderRequest::TensorRt] {
        let err = Engine::load(&dir, &EngineOptions { provider: req, ..base.clone() }).err().unwrap();
        assert_eq!(err.kind, ErrorKind::Provider, "{err}");
        assert!(err.message.starts_with(req.name()), "{err}");
    }
}
