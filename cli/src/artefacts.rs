//! `ptgrm artefacts`: what a live low-light user sees besides PSNR: a fixed pattern drawn into
//! flat dark areas (grid score) and noise that crawls from frame to frame on a still scene
//! (temporal noise ratio). Both run the model on synthetic night captures of a dark sensor:
//! clean values v in [0,1] are decoded to linear light (v^2.2), scaled by the exposure, counted
//! as photons (Poisson), given Gaussian read noise, encoded back and quantised to 8 bits.
//!
//! - Grid score, per period P in 4..=64: the variance of the P x P phase means of the output
//!   luma divided by what independent noise of the output's own variance gives (issue 10's
//!   definition), averaged over `GRID_FRAMES` captures per grey level; and the fixed-pattern
//!   score, which counts only what stays put from capture to capture, against the scatter of
//!   each phase mean between those captures (`grid_pattern`: a denoiser's leftover noise is
//!   phase-locked to its cells and inflates the first score, not the second). With each, the
//!   pattern amplitude: the RMS of the phase means less what noise explains, in 8-bit luma
//!   levels (below about 0.5: invisible; the shuffle grid of v2 at step 20,000 was several
//!   levels).
//! - Temporal noise ratio: the mean per-pixel standard deviation over independent captures of
//!   one still scene, of the model's output divided by that of plain brightening (each capture
//!   times one gain that gives the model's mean). Below 1: the model removes noise over time.
//! - Prior flicker: a `FLICKER_FRAMES`-frame clip of a slow pan (2 px per frame) over a smooth
//!   synthetic dark scene (no stripes: their steps would hide the prior's), a new noisy
//!   capture per frame, through the engine as the element runs it; the largest frame-to-frame
//!   step of mean output luma at a frame that runs the prior, divided by the largest step at the
//!   other frames. About 1: prior updates do not show; the target is <= 1.5.
//!
//! The engine runs with the element's prior interval, as it would on video.

use crate::engine_args::{EngineArgs, load_engine, model_dir};
use crate::grid_pattern::{MAX_PERIOD, PERIODS, border_bands, fixed_pattern_scores, grid_scores};
use crate::image_io::read_rgb8;
use crate::rgb_engine::{Wanted, restore_rgb};
use crate::sensor::{Sensor, SensorArgs};
use clap::Args;
use image::RgbImage;
use ptgrm::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub struct ArtefactsArgs {
    /// Model bundle directory (default: the installed default model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Still scene for the temporal measurement (PNG/JPEG; default: a synthetic scene).
    #[arg(long)]
    scene: Option<PathBuf>,
    #[command(flatten)]
    sensor: SensorArgs,
    /// Independent captures of the still scene.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    captures: u32,
    /// Measure the base restorer F's output instead of the refined one (which part draws a
    /// pattern).
    #[arg(long)]
    base: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Serialize)]
struct GridReport {
    /// Clean grey levels of the flat frames.
    levels: Vec<f64>,
    /// Against independent noise of the output's own variance (issue 10's grid score).
    #[serde(flatten)]
    independent: PatternReport,
    /// Against the capture-to-capture scatter of the phase means.
    fixed_pattern: PatternReport,
}

/// Largest score over the levels and periods and where; per period, the larger score of the
/// levels; largest pattern amplitude (8-bit luma levels) and where.
#[derive(Serialize)]
struct PatternReport {
    max_score: f64,
    worst_period: usize,
    scores: Vec<(usize, f64)>,
    max_amplitude: f64,
    amplitude_period: usize,
}

/// On the same flat frames (whole, margins included), the mean luma of the `band`-pixel strip
/// along each edge less that of the central half, in 8-bit levels, averaged over the captures;
/// per side the grey level where it is largest in size.
#[derive(Serialize)]
struct BorderReport {
    band: usize,
    top: f64,
    bottom: f64,
    left: f64,
    right: f64,
}

#[derive(Serialize)]
struct TemporalReport {
    captures: u32,
    model_std: f64,
    brightening_std: f64,
    ratio: f64,
}

#[derive(Serialize)]
struct FlickerReport {
    frames: usize,
    prior_interval: u32,
    /// Largest step of mean output luma (8-bit levels) at prior frames and at the others.
    step_at_prior: f64,
    step_elsewhere: f64,
    ratio: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    /// "refined" or "base".
    output: &'static str,
    provider: &'static str,
    sensor: Sensor,
    grid: GridReport,
    border: BorderReport,
    temporal: TemporalReport,
    flicker: FlickerReport,
}

/// Width of the edge strips the border shading is measured on (two cells of R at 1/8).
const BORDER_BAND: usize = 16;

/// Frames of the panning clip for the flicker measurement (four prior runs at interval 15).
const FLICKER_FRAMES: usize = 60;

/// Independent flat captures per grey level for the grid scores (the fixed-pattern score's
/// noise estimate has (GRID_FRAMES - 1) P^2 degrees of freedom: about +-13 % at P = 4).
const GRID_FRAMES: u64 = 8;
/// The grid score reads the central GRID_SIDE square of a frame GRID_MARGIN larger on each
/// side: what a network does at the frame border (padding) is not a repeating pattern, but
/// it differs between phases whose last row or column falls on the border when P does not
/// divide the side (measured on v2: ~5 at periods 6, 7, 11, 12, 14 with the border included).
const GRID_SIDE: u32 = 256;
const GRID_MARGIN: u32 = 32;

pub fn run(args: &ArtefactsArgs) -> Result<()> {
    let sensor = args.sensor.sensor()?;
    let dir = model_dir(args.model.as_deref())?;
    let mut options = args.engine.options();
    options.prior_interval = ptgrm::engine::VIDEO_PRIOR_INTERVAL;
    let mut engine = load_engine(&dir, &options)?;
    let wanted = Wanted { refined: !args.base, base: args.base };
    // Each measurement starts with a prior of its own scene (the first frame after a reset).
    let mut restore = |img: &RgbImage, fresh_prior: bool| -> Result<RgbImage> {
        if fresh_prior {
            engine.reset_prior();
        }
        let out = restore_rgb(&mut engine, img, wanted)?;
        Ok(if wanted.base { out.base } else { out.refined }.expect("the output was asked for"))
    };

    let levels: Vec<f64> = vec![0.25, 0.5];
    let (side, margin, whole) = (GRID_SIDE as usize, GRID_MARGIN as usize, (GRID_SIDE + 2 * GRID_MARGIN) as usize);
    let mut worst = Worst::default();
    let mut worst_fixed = Worst::default();
    let mut border = [0.0f64; 4];
    for (i, &level) in levels.iter().enumerate() {
        let v = (level * 255.0).round() as u8;
        let flat = RgbImage::from_pixel(whole as u32, whole as u32, image::Rgb([v, v, v]));
        let mut frames = Vec::with_capacity(GRID_FRAMES as usize);
        let mut bands = [0.0f64; 4];
        let (mut scores, mut excess) = ([0.0f64; MAX_PERIOD + 1], [0.0f64; MAX_PERIOD + 1]);
        for k in 0..GRID_FRAMES {
            let out = restore(&sensor.capture(&flat, 1000 + 100 * i as u64 + k), k == 0)?;
            let y = luma(&out);
            let b = border_bands(&y, whole, whole, BORDER_BAND);
            bands.iter_mut().zip(b).for_each(|(sum, v)| *sum += v / GRID_FRAMES as f64);
            // The central square: what the border does is measured above, not here.
            let inner: Vec<f64> = y.chunks(whole).skip(margin).take(side).flat_map(|row| &row[margin..margin + side]).copied().collect();
            for g in grid_scores(&inner, side, side) {
                scores[g.period] += g.score / GRID_FRAMES as f64;
                excess[g.period] += g.excess_variance / GRID_FRAMES as f64;
            }
            frames.push(inner);
        }
        for (worst, b) in border.iter_mut().zip(bands) {
            if b.abs() > worst.abs() {
                *worst = b;
            }
        }
        for p in PERIODS {
            worst.update(p, scores[p], excess[p].max(0.0).sqrt());
        }
        for f in fixed_pattern_scores(&frames, side, side) {
            worst_fixed.update(f.period, f.score, f.amplitude);
        }
    }
    let grid = GridReport { levels, independent: worst.report(), fixed_pattern: worst_fixed.report() };

    let scene = match &args.scene {
        Some(path) => read_rgb8(path)?,
        None => synthetic_scene(320, 192),
    };
    let mut ours = Vec::new();
    let mut inputs = Vec::new();
    for k in 0..args.captures {
        let noisy = sensor.capture(&scene, 2000 + k as u64);
        ours.push(restore(&noisy, k == 0)?);
        inputs.push(noisy);
    }
    let gain = mean(&ours) / mean(&inputs).max(1e-9);
    let brightened: Vec<RgbImage> = inputs.iter().map(|img| scale(img, gain)).collect();
    let (model_std, brightening_std) = (temporal_std(&ours), temporal_std(&brightened));

    let wide = pan_scene(scene.width() + FLICKER_FRAMES as u32 * 2, scene.height());
    let mut frame_means = Vec::with_capacity(FLICKER_FRAMES);
    for t in 0..FLICKER_FRAMES {
        let view = image::imageops::crop_imm(&wide, 2 * t as u32, 0, scene.width(), scene.height()).to_image();
        let out = restore(&sensor.capture(&view, 3000 + t as u64), t == 0)?;
        frame_means.push(mean(std::slice::from_ref(&out)));
    }
    let interval = options.prior_interval;
    let (step_at_prior, step_elsewhere) = flicker_steps(&frame_means, interval as usize);
    let report = Report {
        model: engine.manifest().name.clone(),
        output: if args.base { "base" } else { "refined" },
        provider: engine.active_provider().name(),
        sensor,
        grid,
        border: BorderReport { band: BORDER_BAND, top: border[0], bottom: border[1], left: border[2], right: border[3] },
        temporal: TemporalReport { captures: args.captures, model_std, brightening_std, ratio: model_std / brightening_std.max(1e-9) },
        flicker: FlickerReport {
            frames: FLICKER_FRAMES,
            prior_interval: interval,
            step_at_prior,
            step_elsewhere,
            ratio: step_at_prior / step_elsewhere.max(1e-9),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::invalid(e.to_string()))?);
    } else {
        println!("model {} ({} output) on {}", report.model, report.output, report.provider);
        let (g, f) = (&report.grid.independent, &report.grid.fixed_pattern);
        println!("grid score: max {:.2} at period {} (about 1: no pattern)", g.max_score, g.worst_period);
        println!(
            "grid pattern amplitude: max {:.2} levels of 255 at period {} (below about 0.5: invisible)",
            g.max_amplitude, g.amplitude_period
        );
        println!(
            "fixed-pattern score: max {:.2} at period {}, amplitude max {:.2} levels at period {} (against the noise between captures)",
            f.max_score, f.worst_period, f.max_amplitude, f.amplitude_period
        );
        let b = &report.border;
        println!(
            "border: the {}-pixel edge strips of a flat frame less its centre: top {:+.2}, bottom {:+.2}, left {:+.2}, right {:+.2} levels",
            b.band, b.top, b.bottom, b.left, b.right
        );
        println!(
            "temporal noise: {:.2} of plain brightening ({:.2} vs {:.2} levels over {} captures)",
            report.temporal.ratio, model_std, brightening_std, args.captures
        );
        println!(
            "prior flicker: {:.2}x (largest mean-luma step {:.3} levels at prior frames, {:.3} elsewhere; {} frames, prior every {})",
            report.flicker.ratio, step_at_prior, step_elsewhere, FLICKER_FRAMES, interval
        );
    }
    Ok(())
}

/// Per period (indexed by it), the largest score and amplitude over the grey levels.
struct Worst {
    score: [f64; MAX_PERIOD + 1],
    amplitude: [f64; MAX_PERIOD + 1],
}

impl Default for Worst {
    fn default() -> Self {
        Worst { score: [0.0; MAX_PERIOD + 1], amplitude: [0.0; MAX_PERIOD + 1] }
    }
}

impl Worst {
    fn update(&mut self, period: usize, score: f64, amplitude: f64) {
        self.score[period] = self.score[period].max(score);
        self.amplitude[period] = self.amplitude[period].max(amplitude);
    }

    fn report(self) -> PatternReport {
        let max = |v: &[f64]| PERIODS.map(|p| (p, v[p])).fold((*PERIODS.start(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let ((worst_period, max_score), (amplitude_period, max_amplitude)) = (max(&self.score), max(&self.amplitude));
        PatternReport { max_score, worst_period, scores: PERIODS.map(|p| (p, self.score[p])).collect(), max_amplitude, amplitude_period }
    }
}

/// (largest |step| of `means` at frames that ran the prior, largest elsewhere); frame 0 runs
/// the prior and has no step, so prior frames are the positive multiples of `interval`.
fn flicker_steps(means: &[f64], interval: usize) -> (f64, f64) {
    let (mut at_prior, mut elsewhere) = (0.0f64, 0.0f64);
    for t in 1..means.len() {
        let step = (means[t] - means[t - 1]).abs();
        if t % interval == 0 {
            at_prior = at_prior.max(step);
        } else {
            elsewhere = elsewhere.max(step);
        }
    }
    (at_prior, elsewhere)
}

/// Rec.601 luma of an RGB8 image, in 8-bit levels.
fn luma(img: &RgbImage) -> Vec<f64> {
    img.pixels().map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).collect()
}

fn mean(imgs: &[RgbImage]) -> f64 {
    let total: f64 = imgs.iter().flat_map(|i| i.iter()).map(|&v| v as f64).sum();
    total / imgs.iter().map(|i| i.len()).sum::<usize>().max(1) as f64
}

fn scale(img: &RgbImage, gain: f64) -> RgbImage {
    let mut out = img.clone();
    out.iter_mut().for_each(|v| *v = (*v as f64 * gain).round().clamp(0.0, 255.0) as u8);
    out
}

/// Mean over pixels and channels of the standard deviation across `imgs` (same size).
fn temporal_std(imgs: &[RgbImage]) -> f64 {
    let k = imgs.len() as f64;
    let len = imgs[0].len();
    let mut total = 0.0;
    for i in 0..len {
        let vals = imgs.iter().map(|img| img.as_raw()[i] as f64);
        let m = vals.clone().sum::<f64>() / k;
        total += (vals.map(|v| (v - m) * (v - m)).sum::<f64>() / (k - 1.0)).sqrt();
    }
    total / len as f64
}

/// Gradients, edges and fine texture, so a denoiser cannot win by blurring everything.
fn synthetic_scene(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let stripes = if (x / 6 + y / 10) % 2 == 0 { 40 } else { 0 };
        let r = (60 + x * 150 / w + stripes) as u8;
        let g = (50 + y * 160 / h) as u8;
        let b = if (x as i32 - 200).pow(2) + (y as i32 - 90).pow(2) < 50 * 50 { 220 } else { 70 + stripes as u8 };
        image::Rgb([r, g, b])
    })
}

/// Smooth gradients and soft blobs: panning over it changes the mean luma only gradually.
fn pan_scene(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
        let blob = |cx: f64, cy: f64, r: f64| (-((fx - cx).powi(2) + (fy - cy).powi(2)) / (r * r)).exp();
        let r = 60.0 + 120.0 * fx + 60.0 * blob(0.3, 0.4, 0.1);
        let g = 50.0 + 140.0 * fy + 50.0 * blob(0.7, 0.6, 0.15);
        let b = 70.0 + 80.0 * (1.0 - fx) + 90.0 * blob(0.5, 0.3, 0.08);
        image::Rgb([r.min(255.0) as u8, g.min(255.0) as u8, b.min(255.0) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flicker_steps_split_prior_frames_from_the_others() {
        // A slow ramp (0.1 per frame) with a jump of 2 at frame 4 (interval 4).
        let mut means: Vec<f64> = (0..9).map(|t| 0.1 * t as f64).collect();
        means[4..].iter_mut().for_each(|m| *m += 2.0);
        let (at_prior, elsewhere) = flicker_steps(&means, 4);
        assert!((at_prior - 2.1).abs() < 1e-9 && (elsewhere - 0.1).abs() < 1e-9, "{at_prior} {elsewhere}");
    }

    #[test]
    fn brightening_alone_has_ratio_one_and_averaging_lowers_it() {
        let scene = synthetic_scene(64, 48);
        let sensor = Sensor { exposure: 0.05, photons: 100.0, read_noise: 0.005, cfa: false };
        let caps: Vec<RgbImage> = (0..6).map(|k| sensor.capture(&scene, k)).collect();
        let gain = 3.0;
        let bright: Vec<RgbImage> = caps.iter().map(|c| scale(c, gain)).collect();
        assert!((temporal_std(&bright) / temporal_std(&bright) - 1.0).abs() < 1e-12);
        // A 3x3 box blur of each brightened capture removes part of the noise.
        let blur = |img: &RgbImage| {
            RgbImage::from_fn(img.width(), img.height(), |x, y| {
                let mut acc = [0u32; 3];
                let mut n = 0;
                for dy in -1i32..=1 {
                    for dx in -1i32..=1 {
                        let (xx, yy) = (x as i32 + dx, y as i32 + dy);
                        if xx >= 0 && yy >= 0 && (xx as u32) < img.width() && (yy as u32) < img.height() {
                            let p = img.get_pixel(xx as u32, yy as u32);
                            (0..3).for_each(|c| acc[c] += p[c] as u32);
                            n += 1;
                        }
                    }
                }
                image::Rgb([(acc[0] / n) as u8, (acc[1] / n) as u8, (acc[2] / n) as u8])
            })
        };
        let blurred: Vec<RgbImage> = bright.iter().map(blur).collect();
        assert!(temporal_std(&blurred) < 0.6 * temporal_std(&bright));
    }

    #[test]
    fn darker_sensors_give_darker_noisier_captures() {
        let scene = synthetic_scene(64, 48);
        let bright = Sensor { exposure: 0.3, photons: 3000.0, read_noise: 0.001, cfa: false }.capture(&scene, 1);
        let dark = Sensor { exposure: 0.01, photons: 50.0, read_noise: 0.01, cfa: false }.capture(&scene, 1);
        assert!(mean(&[dark.clone()]) < 0.5 * mean(&[bright]));
        assert_eq!(dark.dimensions(), scene.dimensions());
    }
}
