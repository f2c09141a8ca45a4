//! The import subcommands end to end on the real weights: ONNX written, manifest record printed.

mod import_support;

use ptgrm_model::import::cli;
use ptgrm_model::onnx_proto::decode_model;

fn io_names(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let g = decode_model(bytes).unwrap().graph.unwrap();
    let names = |v: &[ptgrm_model::onnx_proto::ValueInfoProto]| v.iter().map(|i| i.name.clone().unwrap()).collect();
    (names(&g.input), names(&g.output))
}

#[test]
fn import_ffdnet_writes_base_graph_and_mit_record() {
    let Some(pth) = import_support::weights("ffdnet_color.pth") else { return };
    let out = std::env::temp_dir().join(format!("ptgrm-import-cli-{}.onnx", std::process::id()));
    let args: Vec<String> =
        ["--pth", pth.to_str().unwrap(), "--sigma", "15", "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    let json = cli::run("import-ffdnet", &args).unwrap();
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["licence"], "MIT");
    assert_eq!(record["version"], "1.1.1");
    assert_eq!(record["sha256"], "286f04f7e3a20254c067ba95efb5d3339f4fc8a09a365a93cd469184d4cdb279");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(io_names(&bytes), (vec!["image".to_string()], vec!["base".to_string()]));
}

#[test]
fn import_mobilenet_v2_writes_prior_graph_and_bsd_record() {
    let Some(pth) = import_support::weights("mobilenet_v2-b0353104.pth") else { return };
    let out = std::env::temp_dir().join(format!("ptgrm-import-cli-mnv2-{}.onnx", std::process::id()));
    let args: Vec<String> = ["--pth", pth.to_str().unwrap(), "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    let json = cli::run("import-mobilenet-v2", &args).unwrap();
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["licence"], "BSD-3-Clause");
    assert_eq!(record["role"], "prior G");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(io_names(&bytes), (vec!["image".to_string()], vec!["prior".to_string()]));
}
