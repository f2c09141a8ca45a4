//! Start-up failures fail READY->PAUSED with an element error naming the cause; `auto` falls
//! back with a bus warning. (A missing ONNX Runtime is in ort_missing.rs: it needs its own process.)

mod common;

use common::*;
use gst::glib;
use gst::prelude::*;
use std::path::Path;

/// videotestsrc ! ptgrestore ! fakesink with `props` (and the test bundle unless `props` sets a model).
fn pipeline_with(props: &str) -> gst::Pipeline {
    let model = if props.contains("model=") { "" } else { "model={model}" };
    pipeline(&format!("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! ptgrestore name=f {model} {props} ! fakesink"))
}

#[test]
fn missing_model_directory_is_named() {
    let e = start_error(&pipeline_with("model=/nonexistent/ptgrm-model"));
    assert!(e.matches(gst::ResourceError::OpenRead), "{e:?}");
    assert!(e.message().contains("/nonexistent/ptgrm-model"), "{}", e.message());
}

#[test]
fn unset_model_says_how_to_set_one() {
    let p = pipeline_with("");
    by_name::<gst::Element>(&p, "f").set_property("model", None::<&str>);
    let e = start_error(&p);
    assert!(e.matches(gst::ResourceError::NotFound), "{e:?}");
    assert!(e.message().contains("model property"), "{}", e.message());
}

#[test]
fn corrupt_graph_file_is_reported_as_a_model_error() {
    let dir = bundle_copy("corrupt-graph");
    let graph = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "onnx"))
        .expect("an .onnx file in the test bundle");
    let mut bytes = std::fs::read(&graph).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 16].fill(0xAB);
    std::fs::write(&graph, bytes).unwrap();
    let e = start_error(&pipeline_with(&format!("model={}", dir.display())));
    assert!(e.matches(gst::ResourceError::OpenRead), "{e:?}");
    let name = graph.file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.message().contains(&name), "error should name {name}: {}", e.message());
}

#[test]
fn corrupt_manifest_is_reported_as_a_model_error() {
    let dir = bundle_copy("corrupt-manifest");
    std::fs::write(dir.join("manifest.json"), b"{\"format\": \"ptgrm-bundle\", ").unwrap();
    let e = start_error(&pipeline_with(&format!("model={}", dir.display())));
    assert!(e.matches(gst::ResourceError::OpenRead), "{e:?}");
    assert!(e.message().contains("manifest"), "{}", e.message());
}

/// An explicitly requested GPU provider either runs or fails start-up naming itself.
fn explicit_provider(provider: &str) {
    let p = pipeline_with(&format!("provider={provider}"));
    let started = try_start(&p);
    let active: Option<String> = by_name::<gst::Element>(&p, "f").property("active-provider");
    p.set_state(gst::State::Null).unwrap();
    match started {
        Ok(()) => assert_eq!(active.as_deref(), Some(provider), "{provider} requested, another provider used"),
        Err(e) => {
            assert!(e.matches(gst::LibraryError::Init), "{e:?}");
            assert!(e.message().contains(provider), "error should name {provider}: {}", e.message());
        }
    }
}

#[test]
fn unavailable_cuda_fails_naming_cuda() {
    explicit_provider("cuda");
}

#[test]
fn unavailable_tensorrt_fails_naming_tensorrt() {
    explicit_provider("tensorrt");
}

#[test]
fn auto_falls_back_with_a_warning_naming_the_skipped_providers() {
    let p = pipeline_with("provider=auto");
    try_start(&p).unwrap();
    let active: String = by_name::<gst::Element>(&p, "f").property::<Option<String>>("active-provider").unwrap();
    let warnings = bus_texts(&p, gst::MessageType::Warning);
    p.set_state(gst::State::Null).unwrap();
    if active == "tensorrt" {
        assert!(warnings.is_empty(), "{warnings:?}");
    } else {
        let w = warnings.iter().find(|w| w.contains("fell back")).unwrap_or_else(|| panic!("no fallback warning: {warnings:?}"));
        assert!(w.contains(&active) && w.contains("tensorrt"), "{w}");
    }
}

#[test]
fn max_size_properties_are_typed_and_out_of_range_values_are_refused() {
    init();
    let e = gst::ElementFactory::make("ptgrestore").build().unwrap();
    assert!(e.find_property("max-resolution").is_none(), "replaced by max-width and max-height");
    for (name, default) in [("max-width", 1920u32), ("max-height", 1080)] {
        let pspec = e.find_property(name).unwrap_or_else(|| panic!("property {name}"));
        let pspec = pspec.downcast::<glib::ParamSpecUInt>().unwrap_or_else(|_| panic!("{name} is not a uint"));
        assert_eq!((pspec.minimum(), pspec.maximum(), pspec.default_value()), (1, 32768, default), "{name}");
        // Set as gst-launch sets them: GObject checks the range and keeps the default (with a
        // GLib warning on stderr) instead of start-up failing later.
        for (text, expected) in [("0", default), ("40000", default), ("640", 640)] {
            let element = gst::parse::launch(&format!("ptgrestore {name}={text}")).unwrap();
            assert_eq!(element.property::<u32>(name), expected, "{name}={text}");
        }
    }
}

#[test]
fn bad_tile_size_fails_with_a_reason() {
    let e = start_error(&pipeline_with("tile-size=16"));
    assert!(e.matches(gst::LibraryError::Settings), "{e:?}");
    assert!(e.message().contains("tile size 16"), "{}", e.message());
}

#[test]
fn default_model_is_the_engines_default() {
    init();
    let e = gst::ElementFactory::make("ptgrestore").build().unwrap();
    let model: Option<String> = e.property("model");
    let expected = ptgrm::bundle::default_model_dir();
    assert_eq!(model.as_deref().map(Path::new), expected.as_deref());
}
