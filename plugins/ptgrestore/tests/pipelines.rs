//! Real pipelines: several instances, EOS, flushing seeks, the latency query, QoS, metadata.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn two_instances_in_one_pipeline() {
    let p = pipeline(
        "videotestsrc num-buffers=5 ! video/x-raw,format=NV12,width=96,height=64 \
         ! ptgrestore name=a model={model} ! ptgrestore name=b model={model} strength=0.5 prior-interval=3 \
         ! appsink name=sink",
    );
    let samples = run_to_eos(&p, "sink");
    assert_eq!(samples.len(), 5);
    for s in &samples {
        let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
        assert_eq!((info.format(), info.width(), info.height()), (gst_video::VideoFormat::Nv12, 96, 64));
    }
}

#[test]
fn eos_and_flushing_seek() {
    let p = pipeline(
        "videotestsrc ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1 \
         ! ptgrestore model={model} ! appsink name=sink sync=false max-buffers=2",
    );
    let sink: gst_app::AppSink = by_name(&p, "sink");
    p.set_state(gst::State::Playing).unwrap();
    let first: Vec<_> = (0..4).map(|_| sink.try_pull_sample(TIMEOUT).expect("frame before seek")).collect();
    assert_eq!(first[0].buffer().unwrap().pts(), Some(gst::ClockTime::ZERO));
    // Replay [100 ms, 400 ms): frames 3..=11, then EOS.
    let frame = |n: u64| gst::ClockTime::SECOND.mul_div_floor(n, 30).unwrap();
    p.seek(
        1.0,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::SeekType::Set,
        frame(3),
        gst::SeekType::Set,
        gst::ClockTime::from_mseconds(400),
    )
    .expect("seek");
    let mut replayed = Vec::new();
    while let Some(s) = sink.try_pull_sample(TIMEOUT) {
        replayed.push(s.buffer().unwrap().pts().unwrap());
    }
    assert!(sink.is_eos(), "no EOS after the seek: {:?}", bus_error(&p));
    assert_no_error(&p);
    p.set_state(gst::State::Null).unwrap();
    let expected: Vec<_> = (3..=11).map(frame).collect();
    assert_eq!(replayed, expected);
}

#[test]
fn latency_query_reports_measured_processing_time() {
    let p = pipeline(
        "videotestsrc num-buffers=6 ! video/x-raw,format=RGB,width=160,height=120 \
         ! ptgrestore name=f model={model} ! appsink name=sink",
    );
    let filter: gst::Element = by_name(&p, "f");
    let sink: gst_app::AppSink = by_name(&p, "sink");
    p.set_state(gst::State::Playing).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..6 {
        sink.try_pull_sample(TIMEOUT).expect("frame");
    }
    let wall = started.elapsed();
    let mut q = gst::query::Latency::new();
    assert!(filter.static_pad("src").unwrap().query(&mut q));
    let (_live, min, max) = q.result();
    p.set_state(gst::State::Null).unwrap();
    assert!(min > gst::ClockTime::ZERO, "processing takes time, reported {min}");
    assert!(min.nseconds() as u128 <= wall.as_nanos(), "reported {min} exceeds the whole run {wall:?}");
    assert!(max.is_none_or(|m| m >= min));
}

#[test]
fn qos_is_enabled_and_metadata_is_complete() {
    init();
    let e = gst::ElementFactory::make("ptgrestore").build().unwrap();
    assert!(e.property::<bool>("qos"));
    let factory = e.factory().unwrap();
    assert_eq!(factory.metadata(gst::ELEMENT_METADATA_KLASS), Some("Filter/Effect/Video"));
    assert!(factory.metadata(gst::ELEMENT_METADATA_DESCRIPTION).unwrap().contains("prior-guided"));
    for name in [
        "model",
        "provider",
        "device-id",
        "fp16",
        "engine-cache-dir",
        "threads",
        "spinning",
        "prior-interval",
        "prior-smoothing",
        "prior-glide",
        "strength",
        "tile-size",
        "max-width",
        "max-height",
        "ort-library",
        "active-provider",
    ] {
        let pspec = e.find_property(name).unwrap_or_else(|| panic!("property {name}"));
        assert!(!pspec.blurb().unwrap_or_default().is_empty(), "{name} has no description");
    }
    let strength = e.find_property("strength").unwrap();
    assert!(strength.flags().contains(gst::PARAM_FLAG_CONTROLLABLE));
    assert!(strength.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING));
    assert!(e.find_property("model").unwrap().flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING), "model swaps live");
    assert!(e.find_property("threads").unwrap().flags().contains(gst::PARAM_FLAG_MUTABLE_READY));
    assert!(!e.find_property("active-provider").unwrap().flags().contains(glib::ParamFlags::WRITABLE));
    assert_eq!(e.property::<Option<String>>("active-provider"), None, "nothing is active before start");
    e.set_property_from_str("provider", "cpu");
    assert_eq!(e.property::<gstptgrestore::ProviderChoice>("provider"), gstptgrestore::ProviderChoice::Cpu);
}

use gst::glib;

#[test]
fn active_provider_is_reported_while_running() {
    let p = pipeline("videotestsrc num-buffers=1 ! ptgrestore name=f model={model} provider=cpu ! fakesink");
    try_start(&p).unwrap();
    let f: gst::Element = by_name(&p, "f");
    assert_eq!(f.property::<Option<String>>("active-provider").as_deref(), Some("cpu"));
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(f.property::<Option<String>>("active-provider"), None);
}
