//! Every way a bundle can be broken gives a model error that names the problem.

use ptgrm::{Engine, EngineOptions, ErrorKind, ProviderRequest};
use ptgrm_bundle::{MANIFEST_FILE, Manifest};
use ptgrm_model::test_bundle::{TestBundleOptions, write_test_bundle};
use std::path::{Path, PathBuf};

fn fresh_bundle(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ptgrm-bundle-errors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    write_test_bundle(&d, &TestBundleOptions::default()).unwrap();
    d
}

fn load_err(dir: &Path) -> ptgrm::Error {
    let opts = EngineOptions { provider: ProviderRequest::Cpu, ..Default::default() };
    Engine::load(dir, &opts).err().expect("loading a broken bundle must fail")
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Replaces a graph file and fixes its sha256 so the content check, not the hash, must catch it.
fn replace_graph(dir: &Path, file: &str, bytes: &[u8]) {
    std::fs::write(dir.join(file), bytes).unwrap();
    let sha = ptgrm_bundle::sha256_hex(bytes);
    edit_manifest(dir, |v| {
        for role in ["prior", "base", "refiner", "merged"] {
            if v["graphs"][role]["file"] == file {
                v["graphs"][role]["sha256"] = sha.clone().into();
            }
        }
    });
}

fn assert_model_error(err: &ptgrm::Error, needle: &str) {
    assert_eq!(err.kind, ErrorKind::Model, "{err}");
    assert!(err.message.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn missing_directory_and_manifest() {
    assert_model_error(&load_err(Path::new("/nonexistent/ptgrm-model")), "is not a directory");
    let d = fresh_bundle("no-manifest");
    std::fs::remove_file(d.join(MANIFEST_FILE)).unwrap();
    assert_model_error(&load_err(&d), "manifest.json");
}

#[test]
fn missing_empty_truncated_and_non_onnx_graphs() {
    let d = fresh_bundle("missing");
    std::fs::remove_file(d.join("refiner.onnx")).unwrap();
    assert_model_error(&load_err(&d), "refiner.onnx");

    let d = fresh_bundle("empty");
    replace_graph(&d, "base.onnx", b"");
    assert_model_error(&load_err(&d), "is empty");

    let d = fresh_bundle("truncated");
    let full = std::fs::read(d.join("refiner.onnx")).unwrap();
    replace_graph(&d, "refiner.onnx", &full[..full.len() / 2]);
    assert_model_error(&load_err(&d), "truncated");

    let d = fresh_bundle("text");
    replace_graph(&d, "base.onnx", b"<html>this is not a model</html>\n");
    assert_model_error(&load_err(&d), "not an ONNX model");
}

#[test]
fn unknown_version_and_wrong_sha256() {
    let d = fresh_bundle("version");
    edit_manifest(&d, |v| v["format_version"] = 7.into());
    assert_model_error(&load_err(&d), "format_version 7 is not supported");

    let d = fresh_bundle("sha");
    edit_manifest(&d, |v| v["graphs"]["base"]["sha256"] = "ab".repeat(32).into());
    assert_model_error(&load_err(&d), "does not match the manifest");

    let d = fresh_bundle("json");
    std::fs::write(d.join(MANIFEST_FILE), "{ not json").unwrap();
    assert_model_error(&load_err(&d), "invalid manifest");
}

#[test]
fn graph_io_that_does_not_match_the_manifest() {
    // The manifest promises an input the graph does not have.
    let d = fresh_bundle("io-names");
    edit_manifest(&d, |v| v["graphs"]["refiner"]["inputs"].as_array_mut().unwrap().push("mask".into()));
    assert_model_error(&load_err(&d), "but the manifest declares");

    // Swapped graphs: base.onnx is really the refiner.
    let d = fresh_bundle("swapped");
    let refiner = std::fs::read(d.join("refiner.onnx")).unwrap();
    replace_graph(&d, "base.onnx", &refiner);
    assert_model_error(&load_err(&d), "base graph base.onnx has inputs");

    // A prior dimension that disagrees with the prior graph's output.
    let d = fresh_bundle("prior-dim");
    edit_manifest(&d, |v| v["prior"]["dim"] = 32.into());
    let err = load_err(&d);
    assert!(err.message.contains("prior"), "{err}");

    // A per-region grid that does not split the prior into equal cells (dim 64, 3x3 cells).
    let d = fresh_bundle("prior-grid");
    edit_manifest(&d, |v| v["prior"]["grid"] = 3.into());
    let err = load_err(&d);
    assert!(err.message.contains("prior.grid 3"), "{err}");
}

#[test]
fn written_bundle_round_trips_through_the_manifest_reader() {
    let d = fresh_bundle("roundtrip");
    let m = Manifest::read(&d).unwrap();
    assert_eq!(m.format_version, 1);
    assert!(m.graphs.base.is_some() && m.graphs.refiner.is_some() && m.graphs.prior.is_some());
}
