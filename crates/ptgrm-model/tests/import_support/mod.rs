//! Shared by the import_* tests: locating the third-party assets they need.
#![allow(dead_code)]

use std::path::PathBuf;

/// The folder scripts/fetch-weights.sh fills: $PTGRM_WEIGHTS_DIR, else <workspace>/.deps/weights.
pub fn weights_dir() -> PathBuf {
    match std::env::var_os("PTGRM_WEIGHTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.deps/weights"),
    }
}

/// `Some(path)` when the asset exists. Otherwise prints why the test is skipped and returns
/// None, unless PTGRM_REQUIRE_IMPORT_ASSETS=1 (set in CI), where a missing asset fails the test.
pub fn asset(path: PathBuf, how_to_get: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let msg = format!("{} is missing ({how_to_get})", path.display());
    if std::env::var("PTGRM_REQUIRE_IMPORT_ASSETS").as_deref() == Ok("1") {
        panic!("{msg}; PTGRM_REQUIRE_IMPORT_ASSETS=1 requires it");
    }
    // Written to the stderr handle directly: libtest captures eprintln! of passing tests, and
    // a skip must show in the log.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {msg}");
    None
}

pub fn weights(file: &str) -> Option<PathBuf> {
    asset(weights_dir().join(file), "run scripts/fetch-weights.sh")
}

/// The folder scripts/fetch-data.sh fills: $PTGRM_DATA_DIR, else <workspace>/data.
pub fn photo(rel: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("PTGRM_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    };
    asset(dir.join(rel), "run scripts/fetch-data.sh")
}

/// An RGB photo as NCHW float32 in [0, 1], with its (height, width).
pub fn load_rgb(path: &std::path::Path) -> (Vec<f32>, usize, usize) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0.0f32; 3 * h * w];
    for (x, y, p) in img.enumerate_pixels() {
        for c in 0..3 {
            out[c * h * w + y as usize * w + x as usize] = p[c] as f32 / 255.0;
        }
    }
    (out, h, w)
}

/// The ONNX Runtime library: $PTGRM_ORT_DYLIB, else the path in <workspace>/.deps/ort.path.
fn ort_library() -> PathBuf {
    if let Some(p) = std::env::var_os("PTGRM_ORT_DYLIB") {
        return PathBuf::from(p);
    }
    let recorded = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.deps/ort.path");
    let text = std::fs::read_to_string(&recorded)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh or set PTGRM_ORT_DYLIB)", recorded.display()));
    PathBuf::from(text.trim())
}

/// The process's one ONNX Runtime environment.
pub fn ort_env() -> &'static ort::environment::Environment {
    static ENV: std::sync::OnceLock<ort::environment::Environment> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let lib = ort_library();
        ort::init_from(&lib)
            .unwrap_or_else(|e| panic!("loading ONNX Runtime from {}: {e}", lib.display()))
            .build()
            .expect("ONNX Runtime environment")
    })
}

/// Runs a one-input ONNX model on an NCHW image; returns each named output's shape and data.
pub fn run_image(model: &[u8], input: &str, data: &[f32], shape: [usize; 4], outputs: &[&str]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut session = ort::session::Session::builder(ort_env())
        .expect("session builder")
        .commit_from_memory(model)
        .expect("ONNX Runtime accepts the graph");
    let tensor = ort::value::TensorRef::from_array_view((shape, data)).expect("input tensor");
    let result = session.run(ort::inputs![input => tensor]).expect("inference");
    outputs
        .iter()
        .map(|name| {
            let (s, d) = result[*name].try_extract_tensor::<f32>().expect("f32 output");
            (s.iter().map(|&v| v as usize).collect(), d.to_vec())
        })
        .collect()
}
