//! A missing ONNX Runtime fails start-up with an element error naming it, and the element works
//! once a usable library is configured. Its own test binary: ONNX Runtime is loaded at most
//! once per process, so this must be the first load in the process.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn missing_onnx_runtime_fails_start_naming_it_then_recovers() {
    let missing = "/nonexistent/ptgrm/libonnxruntime.so.1";
    let p = pipeline(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! ptgrestore name=f model={{model}} ort-library={missing} ! appsink name=sink"
    ));
    let e = start_error(&p);
    assert!(e.matches(gst::LibraryError::Init), "{e:?}");
    assert!(e.message().contains("ONNX Runtime"), "{}", e.message());
    assert!(e.message().contains(missing), "error should name the path tried: {}", e.message());

    // Unset: the default search (ORT_DYLIB_PATH, setup's path, system) finds the real library.
    by_name::<gst::Element>(&p, "f").set_property("ort-library", None::<&str>);
    assert_eq!(run_to_eos(&p, "sink").len(), 2);
}
