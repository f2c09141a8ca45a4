//! `ptgrm bench`: engine throughput on synthetic RGB frames, against a bare ort session on the
//! same graphs and size (bare_ort.rs). The two run in alternating blocks of frames so that load
//! from other processes on the machine affects both alike.

use crate::bare_ort::BareModel;
use crate::engine_args::{EngineArgs, load_engine, model_dir, parse_size};
use clap::Args;
use ptgrm::tiling::padded;
use ptgrm::{FrameLayout, FrameMut, FrameRef, PixelFormat, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Frames each side runs before the other takes over.
const BLOCK: usize = 5;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model bundle directory (default: $PTGRM_MODEL, then the installed models/lowlight).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Frame size, WxH.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    size: (usize, usize),
    /// Timed frames per side.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    frames: u32,
    /// Untimed frames per side before timing.
    #[arg(long, default_value_t = 3)]
    warmup: u32,
    /// Recompute the prior every N frames (default: the element's, so both report comparable
    /// numbers; 1 = every frame).
    #[arg(long, default_value_t = ptgrm::engine::VIDEO_PRIOR_INTERVAL, value_parser = clap::value_parser!(u32).range(1..))]
    prior_interval: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Serialize)]
struct Timing {
    fps: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    bundle: PathBuf,
    provider: &'static str,
    threads: usize,
    width: usize,
    height: usize,
    /// Tensor size the graphs run at (padded to the pad multiple).
    graph_width: usize,
    graph_height: usize,
    frames: u32,
    prior_interval: u32,
    engine: Timing,
    bare_ort: Timing,
    /// engine fps / bare ort fps.
    ratio: f64,
}

/// Deterministic test image: smooth gradients plus fine texture, like a real frame has both.
fn pattern(x: usize, y: usize, c: usize) -> u8 {
    let smooth = (x * 255 / 640 + y * 255 / 360 + c * 85) % 256;
    let texture = ((x * 7) ^ (y * 13) ^ (c * 29)) & 31;
    ((smooth + texture) % 256) as u8
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let (w, h) = args.size;
    let dir = model_dir(args.model.as_deref())?;
    let mut options = args.engine.options();
    // The bare side cannot tile: compare whole frames unless tiling was asked for explicitly.
    options.tile_size = args.engine.tile_size.unwrap_or(0);
    options.prior_interval = args.prior_interval;
    let mut engine = load_engine(&dir, &options)?;
    let provider = engine.active_provider();
    let mut bare = BareModel::load(&dir, provider, options.threads, (w, h), args.prior_interval, pattern)?;

    let layout = FrameLayout::packed(PixelFormat::Rgb8, w, h);
    let input: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..3).map(move |c| pattern(x, y, c)))).collect();
    let mut output = vec![0u8; layout.contiguous_len()];
    let frame = FrameRef::contiguous(layout, &input)?;
    let mut out_frame = FrameMut::contiguous(layout, &mut output)?;
    let mut engine_frame = || engine.process(&frame, &mut out_frame);
    let mut bare_frame = || bare.run_frame();

    for _ in 0..args.warmup {
        engine_frame()?;
        bare_frame()?;
    }
    let n = args.frames as usize;
    let (mut engine_times, mut bare_times) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while engine_times.len() < n {
        let block = BLOCK.min(n - engine_times.len());
        for _ in 0..block {
            engine_times.push(timed(&mut engine_frame)?);
        }
        for _ in 0..block {
            bare_times.push(timed(&mut bare_frame)?);
        }
    }
    let (engine_t, bare_t) = (timing(&mut engine_times), timing(&mut bare_times));
    let pm = engine.manifest().pad_multiple as usize;
    let report = Report {
        model: engine.manifest().name.clone(),
        bundle: dir,
        provider: provider.name(),
        threads: options.threads,
        width: w,
        height: h,
        graph_width: padded(w, pm),
        graph_height: padded(h, pm),
        frames: args.frames,
        prior_interval: args.prior_interval,
        ratio: engine_t.fps / bare_t.fps,
        engine: engine_t,
        bare_ort: bare_t,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
    } else {
        print_report(&report);
    }
    Ok(())
}

fn timed(f: &mut impl FnMut() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn timing(times: &mut [Duration]) -> Timing {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let total: f64 = times.iter().map(|&d| ms(d)).sum();
    // Nearest-rank percentile.
    let pct = |p: f64| ms(times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1]);
    Timing { fps: 1e3 * times.len() as f64 / total, p50_ms: pct(0.50), p99_ms: pct(0.99), mean_ms: total / times.len() as f64 }
}

fn print_report(r: &Report) {
    let threads = if r.threads == 0 { "default".to_string() } else { r.threads.to_string() };
    println!("model {} ({})", r.model, r.bundle.display());
    println!(
        "provider {}, threads {threads}, frame {}x{} (graphs at {}x{}), {} frames per side, prior every {} frame(s)",
        r.provider, r.width, r.height, r.graph_width, r.graph_height, r.frames, r.prior_interval
    );
    for (name, t) in [("engine", &r.engine), ("bare ort", &r.bare_ort)] {
        println!("{name:<9} {:>8.2} fps   p50 {:>8.2} ms   p99 {:>8.2} ms", t.fps, t.p50_ms, t.p99_ms);
    }
    println!("ratio engine/bare ort: {:.3}", r.ratio);
}
