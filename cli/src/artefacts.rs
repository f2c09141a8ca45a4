//! `ptgrm artefacts`: what a live low-light user sees besides PSNR: a fixed pattern drawn into
//! flat dark areas (grid score) and noise that crawls from frame to frame on a still scene
//! (temporal noise ratio). Both run the model on synthetic night captures of a dark sensor:
//! clean values v in [0,1] are decoded to linear light (v^2.2), scaled by the exposure, counted
//! as photons (Poisson), given Gaussian read noise, encoded back and quantised to 8 bits.
//!
//! - Grid score, per period P in 4..=64: the variance of the P x P phase means of the output
//!   luma (the mean over all pixels with x = i, y = j mod P) divided by what independent noise
//!   of the output's own variance gives, sigma^2 P^2 / N. About 1: no pattern; a pattern of
//!   period P (or a divisor of it) raises it. The estimate rests on P² phase means, so at small
//!   P one frame's score spreads widely (about ±36 % at P = 4); it is averaged over
//!   `GRID_FRAMES` independent captures per grey level.
//!   The score is relative to the output's own noise, so a strong denoiser scores high for a
//!   pattern nobody sees; the pattern amplitude says how strong it is: the RMS over the P x P
//!   phases of the phase means less what independent noise explains, in 8-bit luma levels
//!   (below about 0.5: invisible; the shuffle grid of v2 at step 20,000 was several levels).
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
    /// Largest score over the levels and periods, and where.
    max_score: f64,
    worst_period: usize,
    /// Per period, the larger score of the levels.
    scores: Vec<(usize, f64)>,
    /// Largest pattern amplitude (8-bit luma levels) over the levels and periods, and where.
    max_amplitude: f64,
    amplitude_period: usize,
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
    temporal: TemporalReport,
    flicker: FlickerReport,
}

/// Frames of the panning clip for the flicker measurement (four prior runs at interval 15).
const FLICKER_FRAMES: usize = 60;

/// Independent flat captures per grey level for the grid score.
const GRID_FRAMES: u64 = 4;
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
    let mut worst = vec![0.0f64; 65];
    let mut worst_amplitude = vec![0.0f64; 65];
    for (i, &level) in levels.iter().enumerate() {
        let v = (level * 255.0).round() as u8;
        let side = GRID_SIDE + 2 * GRID_MARGIN;
        let flat = RgbImage::from_pixel(side, side, image::Rgb([v, v, v]));
        let (mut sum, mut excess) = (vec![0.0f64; 65], vec![0.0f64; 65]);
        for k in 0..GRID_FRAMES {
            let out = restore(&sensor.capture(&flat, 1000 + 100 * i as u64 + k), k == 0)?;
            let inner = image::imageops::crop_imm(&out, GRID_MARGIN, GRID_MARGIN, GRID_SIDE, GRID_SIDE).to_image();
            for g in grid_scores(&luma(&inner), GRID_SIDE as usize, GRID_SIDE as usize) {
                sum[g.period] += g.score / GRID_FRAMES as f64;
                excess[g.period] += g.excess_variance / GRID_FRAMES as f64;
            }
        }
        for p in 4..=64 {
            worst[p] = worst[p].max(sum[p]);
            worst_amplitude[p] = worst_amplitude[p].max(excess[p].max(0.0).sqrt());
        }
    }
    let scores: Vec<(usize, f64)> = (4..=64).map(|p| (p, worst[p])).collect();
    let (worst_period, max_score) = scores.iter().copied().fold((4, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    let (amplitude_period, max_amplitude) =
        (4..=64).map(|p| (p, worst_amplitude[p])).fold((4, 0.0), |a, b| if b.1 > a.1 { b } else { a });

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
        grid: GridReport { levels, max_score, worst_period, scores, max_amplitude, amplitude_period },
        temporal: TemporalReport {
            captures: args.captures,
            model_std,
            brightening_std,
            ratio: model_std / brightening_std.max(1e-9),
        },
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
        println!("grid score: max {:.2} at period {} (about 1: no pattern)", max_score, worst_period);
        println!(
            "grid pattern amplitude: max {:.2} levels of 255 at period {} (below about 0.5: invisible)",
            max_amplitude, amplitude_period
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

/// One period's pattern measure on one frame.
struct PeriodScore {
    period: usize,
    /// Variance of the phase means over what independent noise gives (about 1: no pattern).
    score: f64,
    /// Variance of the phase means less what independent noise explains: the pattern's power
    /// (squared luma levels; negative when noise alone explains it).
    excess_variance: f64,
}

/// The scores for P in 4..=64 (see the module comment), each on the top-left square whose side
/// is a multiple of P, so every phase has as many pixels. The output's variance is floored at
/// 8-bit quantisation noise (1/12), so a perfectly flat output scores 0, not infinity.
fn grid_scores(y: &[f64], w: usize, h: usize) -> Vec<PeriodScore> {
    (4..=64usize)
        .map(|p| {
            let (pw, ph) = (w / p * p, h / p * p);
            let n = (pw * ph) as f64;
            let pixels = || (0..ph).flat_map(move |yy| (0..pw).map(move |xx| (yy, xx, y[yy * w + xx])));
            let m = pixels().map(|(_, _, v)| v).sum::<f64>() / n;
            let var = (pixels().map(|(_, _, v)| (v - m) * (v - m)).sum::<f64>() / n).max(1.0 / 12.0);
            let mut sum = vec![0.0; p * p];
            for (yy, xx, v) in pixels() {
                sum[(yy % p) * p + xx % p] += v;
            }
            let per_phase = n / (p * p) as f64;
            let means: Vec<f64> = sum.iter().map(|s| s / per_phase).collect();
            let var_means = means.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / means.len() as f64;
            let from_noise = var * (p * p) as f64 / n;
            PeriodScore { period: p, score: var_means / from_noise, excess_variance: var_means - from_noise }
        })
        .collect()
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
    use crate::sensor::Rng;

    fn noise(w: usize, h: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..w * h).map(|_| 100.0 + 5.0 * rng.normal()).collect()
    }

    #[test]
    fn independent_noise_scores_about_one_and_a_pattern_stands_out() {
        let (w, h) = (256, 256);
        // Averaged over GRID_FRAMES fields as the command does.
        let mut clean = vec![0.0; 65];
        for seed in 0..GRID_FRAMES {
            for g in grid_scores(&noise(w, h, 10 + seed), w, h) {
                clean[g.period] += g.score / GRID_FRAMES as f64;
            }
        }
        let clean = &clean[4..];
        assert!(clean.iter().all(|s| (0.5..1.5).contains(s)), "{clean:?}");
        let mean = clean.iter().sum::<f64>() / clean.len() as f64;
        assert!((0.9..1.1).contains(&mean), "{mean}");
        // A faint period-16 dot grid (1.5 levels, well under the noise) is found at 16 and its
        // multiples, not at unrelated periods.
        let mut dotted = noise(w, h, 2);
        for y in (0..h).step_by(16) {
            for x in (0..w).step_by(16) {
                dotted[y * w + x] += 1.5 * 16.0;
            }
        }
        let s: Vec<(usize, f64)> = grid_scores(&dotted, w, h).iter().map(|g| (g.period, g.score)).collect();
        let at = |p: usize| s.iter().find(|&&(q, _)| q == p).unwrap().1;
        assert!(at(16) > 3.0 && at(32) > 3.0, "{s:?}");
        assert!(at(13) < 1.5, "{s:?}");
    }

    #[test]
    fn pattern_amplitude_is_in_luma_levels_whatever_the_noise() {
        // A period-4 pattern of +-1 level (RMS 1) under noise of sigma 5: about 1 level at
        // P = 4, and noise alone about 0.
        let (w, h) = (256, 256);
        let amplitude_at = |y: &[f64], p: usize| {
            let g = grid_scores(y, w, h).into_iter().find(|g| g.period == p).unwrap();
            g.excess_variance.max(0.0).sqrt()
        };
        let mut patterned = noise(w, h, 7);
        for (i, v) in patterned.iter_mut().enumerate() {
            let (x, y) = (i % w, i / w);
            *v += if (x % 4 < 2) ^ (y % 4 < 2) { 1.0 } else { -1.0 };
        }
        let a = amplitude_at(&patterned, 4);
        assert!((0.85..1.15).contains(&a), "amplitude {a}");
        let quiet = amplitude_at(&noise(w, h, 8), 4);
        assert!(quiet < 0.3, "noise alone: {quiet}");
    }

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
        let sensor = Sensor { exposure: 0.05, photons: 100.0, read_noise: 0.005 };
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
        let bright = Sensor { exposure: 0.3, photons: 3000.0, read_noise: 0.001 }.capture(&scene, 1);
        let dark = Sensor { exposure: 0.01, photons: 50.0, read_noise: 0.01 }.capture(&scene, 1);
        assert!(mean(&[dark.clone()]) < 0.5 * mean(&[bright]));
        assert_eq!(dark.dimensions(), scene.dimensions());
    }
}
