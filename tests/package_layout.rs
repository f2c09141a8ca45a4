//! The runtime crate stays small: what the element, the C library and the CLI all link carries
//! ONNX Runtime, the bundle format and little else, never the CLI's or the model tools'
//! dependencies (argument parsing, image codecs, protobuf).

use std::process::Command;

#[test]
fn runtime_depends_on_no_cli_or_model_tool_crates() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "ptgrm", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ort v") && text.contains("ptgrm-bundle v"), "unexpected tree:\n{text}");
    for name in ["clap", "image", "prost", "protobuf", "ptgrm-model", "gstreamer", "cbindgen"] {
        let found: Vec<&str> = text.lines().filter(|l| l.split_whitespace().next() == Some(name)).collect();
        assert!(found.is_empty(), "the runtime crate depends on {name}: {found:?}");
    }
}
