//! The engine owns the execution provider: when the first frame fails on a GPU provider it
//! falls back to the next one, and the element follows (active-provider, notify, an element
//! message and a WARNING). The GPU failure is injected with ptgrm's fault-injection seam on a
//! private copy of the test bundle, so other tests in this process are unaffected.

mod common;

use common::*;
use gst::prelude::*;
use std::sync::{Arc, Mutex};

#[test]
fn first_frame_fallback_moves_active_provider_and_tells_the_application() {
    init();
    let dir = bundle_copy("fault-tensorrt");
    ptgrm::fault::fail_first_frame(&dir, ptgrm::Provider::TensorRt);
    let p = pipeline(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=64,height=48 \
         ! ptgrestore name=f model={} ! appsink name=sink",
        dir.display()
    ));
    let f: gst::Element = by_name(&p, "f");
    let notified = Arc::new(Mutex::new(Vec::new()));
    let seen = notified.clone();
    f.connect_notify(Some("active-provider"), move |f, _| {
        seen.lock().unwrap().push(f.property::<Option<String>>("active-provider"));
    });
    let sink: gst_app::AppSink = by_name(&p, "sink");
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    while sink.try_pull_sample(TIMEOUT).is_some() {
        frames += 1;
    }
    assert!(sink.is_eos(), "no EOS: {:?}", bus_error(&p));
    let active = f.property::<Option<String>>("active-provider");
    let messages = bus_messages(&p);
    p.set_state(gst::State::Null).unwrap();
    ptgrm::fault::clear(&dir);

    assert!(texts_of(&messages, gst::MessageType::Error).is_empty(), "{messages:?}");
    assert_eq!(frames, 3, "the failed first frame is run again on the next provider, not dropped");
    assert_eq!(active.as_deref(), Some("cpu"));
    let notified = notified.lock().unwrap().clone();
    let expected = [Some("tensorrt".to_owned()), Some("cpu".to_owned()), None];
    assert_eq!(notified, expected, "start, fallback, stop");

    let changes: Vec<&gst::StructureRef> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e.structure().filter(|s| s.name() == "ptgrm-provider-changed"),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let field = |name| changes[0].get::<String>(name).unwrap_or_else(|e| panic!("field {name}: {e}"));
    assert_eq!(field("provider"), "cpu");
    assert_eq!(field("previous"), "tensorrt");
    assert!(field("reason").contains("injected first-frame failure"), "{}", field("reason"));

    let warnings = texts_of(&messages, gst::MessageType::Warning);
    assert!(warnings.iter().any(|w| w.contains("changed from tensorrt to cpu")), "{warnings:?}");
}
