//! Build script of the runtime crate.

fn main() {
    record_default_paths();
}

/// Bakes in where scripts/setup.sh put ONNX Runtime (.deps/ort.path) and where the repository's
/// models are, so the CLI, the C library and the GStreamer element find both with no
/// configuration after the README's setup.
fn record_default_paths() {
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ort_path_file = root.join(".deps/ort.path");
    println!("cargo:rerun-if-changed={}", ort_path_file.display());
    let ort = std::fs::read_to_string(&ort_path_file).map(|s| s.trim().to_string()).unwrap_or_default();
    println!("cargo:rustc-env=PTGRM_SETUP_ORT_PATH={ort}");
    println!("cargo:rustc-env=PTGRM_BUILD_MODELS_DIR={}", root.join("models").display());
    println!("cargo:rerun-if-changed=build.rs");
}
