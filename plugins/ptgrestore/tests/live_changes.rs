//! Start-up properties set while the element runs: `model` swaps in a new engine between two
//! frames (or, when the new one fails to load, keeps the old one with a WARNING); the others
//! are refused with a WARNING and keep the value that runs. Frames are pushed through an appsrc
//! and pulled one at a time, so each property change lands between two known frames.

mod common;

use common::*;
use gst::prelude::*;
use ptgrm_model::test_bundle::{Layout, TestBundleOptions, write_test_bundle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

const FRAMES: u64 = 8;

/// A second bundle whose outputs differ from `bundle()`'s (other weights, merged graph, so its
/// manifest name differs too).
fn bundle_b() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("bundle-b");
        let options = TestBundleOptions { layout: Layout::Merged, seed: 1, ..TestBundleOptions::default() };
        write_test_bundle(&dir, &options).expect("write the second test bundle");
        dir
    })
}

fn caps() -> gst::Caps {
    init();
    "video/x-raw,format=RGB,width=64,height=48,framerate=30/1".parse().unwrap()
}

/// Frame `i` of the input: every frame different, so a stale prior or engine would show.
fn frame(i: u64) -> gst::Buffer {
    buffer_for(&caps(), i, |j| texture(j + 3 * i as usize))
}

struct Run {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    filter: gst::Element,
}

impl Run {
    fn start(model: &Path) -> Run {
        let pipeline =
            pipeline(&format!("appsrc name=src format=time ! ptgrestore name=f model={} ! appsink name=sink sync=false", model.display()));
        let src: gst_app::AppSrc = by_name(&pipeline, "src");
        src.set_caps(Some(&caps()));
        let run = Run { sink: by_name(&pipeline, "sink"), filter: by_name(&pipeline, "f"), src, pipeline };
        run.pipeline.set_state(gst::State::Playing).expect("PLAYING");
        run
    }

    /// Pushes frame `i` and returns the output's bytes.
    fn process(&self, i: u64) -> Vec<u8> {
        self.src.push_buffer(frame(i)).expect("push");
        let sample = self.sink.try_pull_sample(TIMEOUT).unwrap_or_else(|| panic!("frame {i}: {:?}", bus_error(&self.pipeline)));
        sample.buffer().unwrap().map_readable().unwrap().to_vec()
    }

    /// Ends the stream; returns the bus messages (the pipeline is left in NULL).
    fn finish(self) -> Vec<gst::Message> {
        self.src.end_of_stream().expect("EOS");
        assert!(self.sink.try_pull_sample(TIMEOUT).is_none() && self.sink.is_eos(), "{:?}", bus_error(&self.pipeline));
        let messages = bus_messages(&self.pipeline);
        self.pipeline.set_state(gst::State::Null).unwrap();
        assert!(texts_of(&messages, gst::MessageType::Error).is_empty(), "{messages:?}");
        messages
    }
}

/// The outputs of a fresh stream of frames `range` on `model`.
fn reference(model: &Path, range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    let run = Run::start(model);
    let out = range.map(|i| run.process(i)).collect();
    run.finish();
    out
}

/// Where two runs' outputs first differ, and by how much (frames are too long to print).
fn first_difference(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<String> {
    assert_eq!(a.len(), b.len());
    let i = (0..a.len()).find(|&i| a[i] != b[i])?;
    let (max, mean) = diff(&a[i], &b[i]);
    Some(format!("frame {i} of {} differs (max {max}, mean {mean:.2} levels)", a.len()))
}

/// Counts notify::`name` emissions of `element` from now on.
fn notifications(element: &gst::Element, name: &str) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    element.connect_notify(Some(name), move |_, _| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    count
}

fn model_of(filter: &gst::Element) -> PathBuf {
    PathBuf::from(filter.property::<Option<String>>("model").expect("a model"))
}

#[test]
fn model_set_while_playing_swaps_between_frames_and_drops_none() {
    let run = Run::start(bundle());
    let notified = notifications(&run.filter, "model");
    let mut out = Vec::new();
    for i in 0..FRAMES {
        if i == FRAMES / 2 {
            run.filter.set_property("model", bundle_b().display().to_string());
            assert_eq!(model_of(&run.filter), bundle_b(), "reads back the model that now runs");
        }
        out.push(run.process(i));
    }
    let messages = run.finish();
    assert_eq!(out.len(), FRAMES as usize);
    assert_eq!(notified.load(Ordering::SeqCst), 1);

    let half = FRAMES as usize / 2;
    let on_a = reference(bundle(), 0..FRAMES);
    let on_b = reference(bundle_b(), FRAMES / 2..FRAMES);
    let before = first_difference(&out[..half], &on_a[..half]);
    assert!(before.is_none(), "frames before the switch must run on bundle A: {before:?}");
    assert!(
        on_a[half..].iter().zip(&on_b).all(|(a, b)| a != b),
        "the two bundles must differ on every frame for this test to mean anything"
    );
    let after = first_difference(&out[half..], &on_b);
    assert!(after.is_none(), "frames after the switch must equal a fresh stream on bundle B: {after:?}");

    let infos = texts_of(&messages, gst::MessageType::Info);
    assert!(infos.iter().any(|t| t.contains("\"test-untrained-merged\" running on cpu")), "{infos:?}");
}

#[test]
fn model_that_fails_to_load_while_playing_keeps_the_old_one_running() {
    let missing = "/nonexistent/ptgrm-swap-target";
    let run = Run::start(bundle());
    let notified = notifications(&run.filter, "model");
    let mut out = Vec::new();
    for i in 0..FRAMES {
        if i == 2 {
            run.filter.set_property("model", missing);
        }
        out.push(run.process(i));
    }
    let model = model_of(&run.filter);
    let messages = run.finish();
    assert_eq!(model, bundle(), "reads back the model that still runs");
    assert_eq!(notified.load(Ordering::SeqCst), 0, "the value did not change");
    let warnings = texts_of(&messages, gst::MessageType::Warning);
    assert!(warnings.iter().any(|w| w.contains(missing) && w.contains("still running")), "{warnings:?}");
    let changed = first_difference(&out, &reference(bundle(), 0..FRAMES));
    assert!(changed.is_none(), "the old engine, prior included, must carry on untouched: {changed:?}");
}

#[test]
fn other_start_up_properties_are_refused_while_running() {
    let run = Run::start(bundle());
    run.process(0);
    let notified = notifications(&run.filter, "threads");
    run.filter.set_property("threads", 2u32);
    run.filter.set_property("max-width", 640u32);
    assert_eq!(run.filter.property::<u32>("threads"), 0, "reads back the value that runs");
    assert_eq!(run.filter.property::<u32>("max-width"), 1920);
    assert_eq!(notified.load(Ordering::SeqCst), 0, "a refused value is no change");
    run.process(1);
    let filter = run.filter.clone();
    let messages = run.finish();
    let warnings = texts_of(&messages, gst::MessageType::Warning);
    for name in ["threads", "max-width"] {
        let expected = format!("{name} cannot change while running; stop the pipeline (READY) first");
        assert!(warnings.contains(&expected), "{expected:?} not in {warnings:?}");
    }
    filter.set_property("threads", 2u32);
    assert_eq!(filter.property::<u32>("threads"), 2, "accepted once stopped");
    assert_eq!(notified.load(Ordering::SeqCst), 1);
}
