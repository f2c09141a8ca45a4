//! ONNX Runtime missing or too old: a clear error listing what was tried, never a panic.
//! Own test binary: nothing here may successfully load a runtime.

use ptgrm::{Engine, EngineOptions, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Command;

fn load_with(lib: &Path) -> ptgrm::Error {
    let opts = EngineOptions { ort_library: Some(lib.to_path_buf()), ..Default::default() };
    // The bundle is never reached: the runtime check comes first.
    Engine::load("/nonexistent-bundle", &opts).err().expect("must fail")
}

#[test]
fn missing_library_lists_the_path_tried() {
    let err = load_with(Path::new("/nonexistent/libonnxruntime.so.1"));
    assert_eq!(err.kind, ErrorKind::Runtime, "{err}");
    assert!(err.message.contains("/nonexistent/libonnxruntime.so.1 (explicit option)"), "{err}");
}

#[test]
fn a_library_that_is_not_onnx_runtime_is_refused() {
    let err = load_with(Path::new("libz.so.1"));
    assert_eq!(err.kind, ErrorKind::Runtime, "{err}");
    assert!(err.message.contains("OrtGetApiBase"), "{err}");
}

#[test]
fn too_old_library_is_refused_with_its_version() {
    // A stand-in library exporting OrtGetApiBase that reports 1.20.0.
    let dir = std::env::temp_dir().join(format!("ptgrm-old-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("old_ort.c");
    std::fs::write(
        &src,
        "typedef struct { const void* (*get_api)(unsigned); const char* (*get_version)(void); } Base;\n\
         static const void* api(unsigned v) { (void)v; return 0; }\n\
         static const char* version(void) { return \"1.20.0\"; }\n\
         static const Base base = { api, version };\n\
         const Base* OrtGetApiBase(void) { return &base; }\n",
    )
    .unwrap();
    let lib: PathBuf = dir.join("libonnxruntime.so.1.20.0");
    let st = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src).status().expect("a C compiler (cc)");
    assert!(st.success());
    let err = load_with(&lib);
    assert_eq!(err.kind, ErrorKind::Runtime, "{err}");
    assert!(err.message.contains("version 1.20.0 is too old"), "{err}");
}
