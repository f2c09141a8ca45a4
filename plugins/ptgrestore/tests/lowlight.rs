//! With the shipped low-light model, a darkened frame comes out brighter.
//!
//! Applies only once models/lowlight holds a trained low-light bundle (manifest task "lowlight"
//! with training steps recorded); until then the test says so on stderr and checks nothing.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn trained_lowlight_model() -> Result<PathBuf, String> {
    let dir = repo().join("models/lowlight");
    let m = ptgrm::Manifest::read(&dir).map_err(|e| format!("no readable bundle in {}: {e}", dir.display()))?;
    let note = m.provenance.note.unwrap_or_default();
    if m.task != "lowlight" || m.provenance.steps == 0 || note.contains("untrained") {
        return Err(format!(
            "{} is not a trained low-light bundle (task {:?}, steps {}, note {note:?})",
            dir.display(),
            m.task,
            m.provenance.steps
        ));
    }
    Ok(dir)
}

/// A 384x256 RGB photo (the validation photo kodim23 when data/ is fetched, else a test pattern).
fn photo() -> gst::Sample {
    let png = repo().join("data/val/kodim23.png");
    let source = if png.is_file() {
        format!("filesrc location={} ! pngdec ! imagefreeze num-buffers=1", png.display())
    } else {
        "videotestsrc num-buffers=1 pattern=smpte".to_string()
    };
    let p = pipeline(&format!("{source} ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=384,height=256 ! appsink name=sink"));
    run_to_eos(&p, "sink").remove(0)
}

#[test]
fn darkened_frame_comes_out_brighter_with_the_lowlight_model() {
    let model = match trained_lowlight_model() {
        Ok(m) => m,
        Err(why) => {
            eprintln!("NOT APPLICABLE YET: {why}");
            return;
        }
    };
    let sample = photo();
    let caps = sample.caps().unwrap().to_owned();
    let (_, planes) = packed_planes(&sample);
    // Low exposure in linear light (the trainer's degradation without noise): 10% of the light.
    let dark: Vec<u8> =
        planes[0].iter().map(|&v| ((v as f64 / 255.0).powf(2.2) * 0.1).powf(1.0 / 2.2) * 255.0).map(|v| v.round() as u8).collect();

    let p = pipeline(&format!("appsrc name=src format=time ! ptgrestore model={} ! appsink name=sink", model.display()));
    let src: gst_app::AppSrc = by_name(&p, "src");
    src.set_caps(Some(&caps));
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let stride = info.stride()[0] as usize;
    let row = info.width() as usize * 3;
    let buffer = buffer_for(&caps, 0, |i| if i % stride < row { dark[(i / stride) * row + i % stride] } else { 0 });
    src.push_buffer(buffer).unwrap();
    src.end_of_stream().unwrap();
    let out = run_to_eos(&p, "sink");
    let (_, restored) = packed_planes(&out[0]);
    let (before, after) = (mean(&dark), mean(&restored[0]));
    eprintln!("mean level: original {:.1}, darkened {before:.1}, restored {after:.1}", mean(&planes[0]));
    assert!(after > before * 1.5 && after > before + 20.0, "darkened mean {before:.1}, restored {after:.1}");
}
