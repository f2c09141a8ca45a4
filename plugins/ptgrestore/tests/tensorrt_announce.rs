//! With an ONNX Runtime that has TensorRT compiled in, start-up announces the (possibly long)
//! engine build on the bus before creating sessions. Needs the GPU build of ONNX Runtime
//! (`scripts/setup.sh --gpu-libs` puts it in .deps/onnxruntime-gpu; no GPU needed); its own
//! test binary because ONNX Runtime is loaded once per process.

mod common;

use common::*;
use gst::prelude::*;
use std::path::Path;

#[test]
fn tensorrt_engine_build_is_announced_on_the_bus() {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps/onnxruntime-gpu/lib/libonnxruntime.so.1");
    if !lib.is_file() {
        eprintln!("NOT APPLICABLE: {} is absent (scripts/setup.sh --gpu-libs installs it)", lib.display());
        return;
    }
    let p = pipeline(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=48 ! ptgrestore name=f model={{model}} ort-library={} ! fakesink",
        lib.canonicalize().unwrap().display()
    ));
    try_start(&p).unwrap();
    let active: Option<String> = by_name::<gst::Element>(&p, "f").property("active-provider");
    let infos = bus_texts(&p, gst::MessageType::Info);
    p.set_state(gst::State::Null).unwrap();
    let first = infos.first().unwrap_or_else(|| panic!("no INFO messages"));
    assert!(first.contains("Preparing TensorRT engines"), "{infos:?}");
    let last = infos.last().unwrap();
    assert!(last.contains(&format!("running on {}", active.unwrap())), "{infos:?}");
}
