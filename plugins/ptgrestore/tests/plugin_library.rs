//! The built plugin library as GStreamer loads it: gst-inspect shows the element and its
//! properties, and the library has no link-time dependency on ONNX Runtime (ONNX Runtime is
//! not on the system library path here, so gst-inspect succeeding proves it too).

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/ holds libgstptgrestore.so; this test runs from target/<profile>/deps/.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(dir.join("libgstptgrestore.so").is_file(), "libgstptgrestore.so not built in {}", dir.display());
    dir
}

#[test]
fn gst_inspect_shows_the_element_without_onnx_runtime() {
    let dir = plugin_dir();
    let registry = std::env::temp_dir().join(format!("ptgrestore-registry-{}.bin", std::process::id()));
    let out = Command::new("gst-inspect-1.0")
        .arg("ptgrestore")
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", &registry)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("gst-inspect-1.0 runs (gstreamer1.0-tools)");
    let _ = std::fs::remove_file(&registry);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gst-inspect failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    for needle in ["Filter/Effect/Video", "prior-guided", "strength", "controllable", "active-provider", "NV12", "YUY2"] {
        assert!(text.contains(needle), "gst-inspect output lacks {needle:?}:\n{text}");
    }
}

#[test]
fn library_does_not_link_onnx_runtime() {
    let lib = plugin_dir().join("libgstptgrestore.so");
    let out = Command::new("readelf").arg("-d").arg(&lib).output().expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("NEEDED"), "readelf -d failed:\n{text}");
    assert!(!text.contains("onnxruntime"), "plugin links ONNX Runtime:\n{text}");
}

#[test]
fn library_exports_no_c_abi_of_libptgrm() {
    // The runtime crate is an rlib without C exports (the C ABI is its own package, libptgrm):
    // a process loading both the plugin and libptgrm must not see two definitions of ptgrm_*.
    let lib = plugin_dir().join("libgstptgrestore.so");
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("nm (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("gst_plugin_ptgrestore_get_desc"), "nm -D failed:\n{text}");
    let exported: Vec<&str> = text.lines().filter(|l| l.split_whitespace().last().is_some_and(|s| s.starts_with("ptgrm_"))).collect();
    assert!(exported.is_empty(), "plugin exports C ABI symbols: {exported:?}");
}
