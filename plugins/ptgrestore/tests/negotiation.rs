//! Caps: size and format changes in the middle of a stream.

mod common;

use common::*;
use gst::prelude::*;

const STEPS: [&str; 5] = [
    "video/x-raw,format=RGB,width=64,height=48,framerate=30/1",
    "video/x-raw,format=I420,width=81,height=45,framerate=30/1",
    "video/x-raw,format=NV12,width=96,height=64,framerate=30/1",
    "video/x-raw,format=YUY2,width=50,height=30,framerate=30/1",
    "video/x-raw,format=BGRx,width=64,height=48,framerate=30/1",
];
const PER_STEP: u64 = 2;

/// Pushes `frames` (caps, buffer) through appsrc ! ptgrestore ! appsink and returns the output.
fn run(frames: &[(gst::Caps, gst::Buffer)]) -> Vec<gst::Sample> {
    let p = pipeline("appsrc name=src format=time ! ptgrestore model={model} ! appsink name=sink");
    let src: gst_app::AppSrc = by_name(&p, "src");
    let sink: gst_app::AppSink = by_name(&p, "sink");
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    for (caps, buffer) in frames {
        if src.caps().as_ref() != Some(caps) {
            src.set_caps(Some(caps));
        }
        src.push_buffer(buffer.clone()).unwrap();
        out.push(sink.try_pull_sample(TIMEOUT).unwrap_or_else(|| panic!("no output for {caps}: {:?}", bus_error(&p))));
    }
    src.end_of_stream().unwrap();
    assert!(sink.try_pull_sample(TIMEOUT).is_none());
    assert!(sink.is_eos());
    assert_no_error(&p);
    p.set_state(gst::State::Null).unwrap();
    out
}

#[test]
fn size_and_format_changes_mid_stream_renegotiate() {
    init();
    let mut frames = Vec::new();
    for (k, caps) in STEPS.iter().enumerate() {
        let caps: gst::Caps = caps.parse().unwrap();
        for i in 0..PER_STEP {
            let n = k as u64 * PER_STEP + i;
            frames.push((caps.clone(), buffer_for(&caps, n, |j| texture(j + n as usize))));
        }
    }
    let out = run(&frames);
    assert_eq!(out.len(), frames.len());
    for ((caps, input), sample) in frames.iter().zip(&out) {
        let got = sample.caps().unwrap();
        assert!(got.can_intersect(caps), "output caps {got} for input {caps}");
        let info = gst_video::VideoInfo::from_caps(got).unwrap();
        assert_eq!(sample.buffer().unwrap().size(), info.size());
        // Each frame must come out as a stream of only that frame would: nothing stale from
        // the previous format or size (the prior is recomputed every frame by default).
        let alone = run(&[(caps.clone(), input.clone())]);
        let (_, a) = packed_planes(sample);
        let (_, b) = packed_planes(&alone[0]);
        assert_eq!(a, b, "frame with caps {caps} differs from the same frame in a fresh stream");
    }
}
