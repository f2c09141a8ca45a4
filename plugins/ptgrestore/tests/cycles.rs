//! 100 NULL -> PLAYING -> NULL cycles: no crash, no error, and no steady memory growth.
//! (Its own test binary so that the resident-set measurement sees only this pipeline.)

mod common;

use common::*;
use gst::prelude::*;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn hundred_null_playing_null_cycles() {
    const CYCLES: usize = 100;
    const WARMUP: usize = 10;
    let p = pipeline(
        "videotestsrc ! video/x-raw,format=I420,width=64,height=48 \
         ! ptgrestore name=f model={model} ! appsink name=sink sync=false max-buffers=1",
    );
    let sink: gst_app::AppSink = by_name(&p, "sink");
    let mut after_warmup = 0;
    for cycle in 0..CYCLES {
        p.set_state(gst::State::Playing).unwrap_or_else(|_| panic!("cycle {cycle}: {:?}", bus_error(&p)));
        // A processed frame proves the engine ran in this cycle.
        sink.try_pull_sample(TIMEOUT).unwrap_or_else(|| panic!("cycle {cycle}: no frame: {:?}", bus_error(&p)));
        p.set_state(gst::State::Null).unwrap();
        assert_no_error(&p);
        if cycle + 1 == WARMUP {
            after_warmup = resident_kib();
        }
    }
    let growth = resident_kib().saturating_sub(after_warmup);
    // Each cycle loads a model (a few MB of sessions and buffers); leaking one per cycle would
    // grow by hundreds of MB over 90 cycles.
    assert!(growth < 48 * 1024, "resident set grew by {growth} KiB over {} cycles", CYCLES - WARMUP);
    eprintln!("resident set growth over {} cycles: {growth} KiB", CYCLES - WARMUP);
}
