//! `ptgrm eval`: PSNR/SSIM of the degraded input, the base output and the refined output
//! against clean references, per image and mean. docs/results.md is generated from its JSON.

use crate::engine_args::{EngineArgs, load_engine, model_dir};
use crate::image_io::{is_image_file, read_rgb8};
use crate::rgb_engine::{Wanted, restore_rgb};
use clap::Args;
use image::RgbImage;
use ptgrm::metrics::{psnr_rgb8, ssim_rgb8};
use ptgrm::{Error, ErrorKind, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model bundle directory (default: $PTGRM_MODEL, then the installed models/lowlight).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Directory of clean reference images.
    #[arg(long)]
    clean: PathBuf,
    /// Directory of degraded images; each is paired with the clean image of the same name
    /// (the extension may differ).
    #[arg(long)]
    degraded: PathBuf,
    /// Add the non-learned low-light baseline: the input brightened per channel to the
    /// model output's means, then a bilateral filter (best of 10 settings per image by SSIM).
    #[arg(long)]
    baseline: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Serialize, Clone, Copy, Default)]
struct Quality {
    /// dB; JSON null when the images are identical (infinite PSNR).
    psnr: f64,
    ssim: f64,
    /// Largest over periods 4, 8 and 16 of [`blockiness`]: about 1 for photos, higher when a
    /// model's cells show as blocks (a space-to-depth F at 1/4 draws period-4 block edges).
    blockiness: f64,
}

#[derive(Serialize)]
struct ImageResult {
    name: String,
    width: u32,
    height: u32,
    input: Quality,
    base: Quality,
    refined: Quality,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<Quality>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    bundle: PathBuf,
    provider: &'static str,
    images: Vec<ImageResult>,
    mean: BTreeMap<&'static str, Quality>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let pairs = pair_images(&args.clean, &args.degraded)?;
    let dir = model_dir(args.model.as_deref())?;
    let mut engine = load_engine(&dir, &args.engine.options())?;
    let mut images = Vec::with_capacity(pairs.len());
    for (name, clean_path, degraded_path) in &pairs {
        let clean = read_rgb8(clean_path)?;
        let degraded = read_rgb8(degraded_path)?;
        if clean.dimensions() != degraded.dimensions() {
            return Err(Error::invalid(format!(
                "{name}: clean image {} is {}x{} but degraded image {} is {}x{}",
                clean_path.display(),
                clean.width(),
                clean.height(),
                degraded_path.display(),
                degraded.width(),
                degraded.height()
            )));
        }
        let restored = restore_rgb(&mut engine, &degraded, Wanted { refined: true, base: true })?;
        let (base, refined) = (restored.base.expect("base requested"), restored.refined.expect("refined requested"));
        let quality = |img: &RgbImage| -> Result<Quality> {
            let context = |e: Error| Error::new(e.kind, format!("{name}: {e}"));
            let (w, h) = (clean.width() as usize, clean.height() as usize);
            Ok(Quality {
                psnr: psnr_rgb8(&clean, img, w, h).map_err(context)?,
                ssim: ssim_rgb8(&clean, img, w, h).map_err(context)?,
                blockiness: [4, 8, 16].map(|p| blockiness(img, p)).into_iter().fold(0.0, f64::max),
            })
        };
        let baseline = if args.baseline {
            let (w, h) = (clean.width() as usize, clean.height() as usize);
            let best = crate::baseline::best_baseline(&degraded, &refined, |c| ssim_rgb8(&clean, c, w, h).unwrap_or(f64::MIN));
            Some(quality(&best)?)
        } else {
            None
        };
        images.push(ImageResult {
            name: name.clone(),
            width: clean.width(),
            height: clean.height(),
            input: quality(&degraded)?,
            base: quality(&base)?,
            refined: quality(&refined)?,
            baseline,
        });
        // A still image is independent of the one before: no prior carried over.
        engine.reset_prior();
    }
    let mut mean: BTreeMap<&'static str, Quality> =
        [("input", mean_of(&images, |r| r.input)), ("base", mean_of(&images, |r| r.base)), ("refined", mean_of(&images, |r| r.refined))]
            .into_iter()
            .collect();
    if args.baseline {
        mean.insert("baseline", mean_of(&images, |r| r.baseline.unwrap_or_default()));
    }
    let report = Report { model: engine.manifest().name.clone(), bundle: dir, provider: engine.active_provider().name(), images, mean };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
    } else {
        print_table(&report);
    }
    Ok(())
}

/// (name, clean path, degraded path) for every image in the degraded directory, sorted by name.
/// Names are file stems, so `kodim23.png` pairs with `kodim23.jpg`.
fn pair_images(clean_dir: &Path, degraded_dir: &Path) -> Result<Vec<(String, PathBuf, PathBuf)>> {
    let clean = images_by_stem(clean_dir)?;
    let degraded = images_by_stem(degraded_dir)?;
    if degraded.is_empty() {
        return Err(Error::invalid(format!("no PNG or JPEG images in {}", degraded_dir.display())));
    }
    degraded
        .into_iter()
        .map(|(stem, degraded_path)| match clean.get(&stem) {
            Some(clean_path) => Ok((stem, clean_path.clone(), degraded_path)),
            None => Err(Error::invalid(format!(
                "degraded image {} has no clean image named {stem}.* in {}",
                degraded_path.display(),
                clean_dir.display()
            ))),
        })
        .collect()
}

fn images_by_stem(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::new(ErrorKind::Io, format!("cannot list directory {}: {e}", dir.display())))?;
    let mut by_stem = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::new(ErrorKind::Io, format!("cannot list directory {}: {e}", dir.display())))?.path();
        if !path.is_file() || !is_image_file(&path) {
            continue;
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(previous) = by_stem.insert(stem.clone(), path.clone()) {
            return Err(Error::invalid(format!("{} and {} have the same name {stem}: keep one", previous.display(), path.display())));
        }
    }
    Ok(by_stem)
}

fn mean_of(images: &[ImageResult], pick: impl Fn(&ImageResult) -> Quality) -> Quality {
    let n = images.len().max(1) as f64;
    Quality {
        psnr: images.iter().map(|r| pick(r).psnr).sum::<f64>() / n,
        ssim: images.iter().map(|r| pick(r).ssim).sum::<f64>() / n,
        blockiness: images.iter().map(|r| pick(r).blockiness).sum::<f64>() / n,
    }
}

/// Mean absolute luma step across the boundaries of a period-`p` grid of blocks (between
/// columns p*k-1 and p*k, and rows alike) divided by the mean step everywhere else. A photo
/// scores about 1; blocks drawn on its p-pixel grid raise it (the classic blockiness measure).
fn blockiness(img: &RgbImage, p: usize) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let luma: Vec<f64> = img.pixels().map(|q| 0.299 * q[0] as f64 + 0.587 * q[1] as f64 + 0.114 * q[2] as f64).collect();
    let (mut at, mut n_at, mut off, mut n_off) = (0.0, 0usize, 0.0, 0usize);
    let mut add = |boundary: bool, step: f64| {
        if boundary {
            at += step;
            n_at += 1;
        } else {
            off += step;
            n_off += 1;
        }
    };
    for y in 0..h {
        for x in 0..w {
            let v = luma[y * w + x];
            if x + 1 < w {
                add((x + 1) % p == 0, (luma[y * w + x + 1] - v).abs());
            }
            if y + 1 < h {
                add((y + 1) % p == 0, (luma[(y + 1) * w + x] - v).abs());
            }
        }
    }
    if n_at == 0 || n_off == 0 {
        return 1.0;
    }
    // Floored: a perfectly flat inside would divide by zero.
    (at / n_at as f64) / (off / n_off as f64).max(0.05)
}

fn print_table(report: &Report) {
    println!("model {} ({}), provider {}", report.model, report.bundle.display(), report.provider);
    println!(
        "{:<20} {:>9}  {:>13} {:>7}  {:>13} {:>7}  {:>13} {:>7}  {:>8}",
        "image", "size", "input PSNR", "SSIM", "base PSNR", "SSIM", "refined PSNR", "SSIM", "gain dB"
    );
    let row = |name: &str, size: &str, input: Quality, base: Quality, refined: Quality| {
        println!(
            "{name:<20} {size:>9}  {:>13.3} {:>7.4}  {:>13.3} {:>7.4}  {:>13.3} {:>7.4}  {:>+8.3}",
            input.psnr,
            input.ssim,
            base.psnr,
            base.ssim,
            refined.psnr,
            refined.ssim,
            refined.psnr - base.psnr
        )
    };
    for r in &report.images {
        row(&r.name, &format!("{}x{}", r.width, r.height), r.input, r.base, r.refined);
    }
    row(&format!("mean ({})", report.images.len()), "", report.mean["input"], report.mean["base"], report.mean["refined"]);
    println!(
        "blockiness (period 4/8/16 block-edge steps over other steps, photos ~1): input {:.2}, base {:.2}, refined {:.2}",
        report.mean["input"].blockiness, report.mean["base"].blockiness, report.mean["refined"].blockiness
    );
    if let Some(b) = report.mean.get("baseline") {
        println!(
            "non-learned baseline (brightened to the refined output's means + bilateral, best of 10 settings per image): PSNR {:.3} SSIM {:.4}",
            b.psnr, b.ssim
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockiness_is_about_one_for_a_smooth_image_and_high_for_blocks() {
        let smooth = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(2 * x + y) as u8, (x + 3 * y) as u8, 90]));
        assert!((blockiness(&smooth, 4) - 1.0).abs() < 0.05, "{}", blockiness(&smooth, 4));
        // The same ramp held constant inside 4x4 cells.
        let blocky = RgbImage::from_fn(64, 48, |x, y| *smooth.get_pixel(x / 4 * 4, y / 4 * 4));
        assert!(blockiness(&blocky, 4) > 3.0, "{}", blockiness(&blocky, 4));
        assert!(blockiness(&blocky, 8) < blockiness(&blocky, 4));
    }
}
