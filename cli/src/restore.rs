//! `ptgrm restore`: one image in, one image out.

use crate::engine_args::{EngineArgs, load_engine, model_dir, parse_strength};
use crate::image_io::{check_writable_output, read_rgb8, write_rgb8};
use crate::rgb_engine::{Wanted, restore_rgb};
use clap::{Args, ValueEnum};
use image::{GenericImage, RgbImage};
use ptgrm::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Model bundle directory (default: $PTGRM_MODEL, then the installed models/lowlight).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input image (PNG or JPEG).
    input: PathBuf,
    /// Output image; the format follows the extension (.png, .jpg, .jpeg).
    output: PathBuf,
    /// What to write: the refined output, the base restorer's output, or degraded | base | refined.
    #[arg(long, value_enum, default_value_t = Emit::Refined)]
    emit: Emit,
    /// Blend between the input (0) and the refined output (1).
    #[arg(long, default_value_t = 1.0, value_parser = parse_strength)]
    strength: f32,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Emit {
    Refined,
    Base,
    SideBySide,
}

pub fn run(args: &RestoreArgs) -> Result<()> {
    // Cheap checks first, so a typo fails before the model loads.
    check_writable_output(&args.output)?;
    let input = read_rgb8(&args.input)?;
    let dir = model_dir(args.model.as_deref())?;
    let mut options = args.engine.options();
    options.strength = args.strength;
    let mut engine = load_engine(&dir, &options)?;

    let started = Instant::now();
    let wanted = Wanted { refined: args.emit != Emit::Base, base: args.emit != Emit::Refined };
    let restored = restore_rgb(&mut engine, &input, wanted)?;
    let elapsed = started.elapsed();
    let image = match args.emit {
        Emit::Refined => restored.refined.expect("refined was requested"),
        Emit::Base => restored.base.expect("base was requested"),
        Emit::SideBySide => side_by_side(&[&input, restored.base.as_ref().expect("base"), restored.refined.as_ref().expect("refined")])?,
    };
    write_rgb8(&args.output, &image)?;
    eprintln!(
        "{} -> {} ({}x{}, {}, provider {}, {:.1} ms)",
        args.input.display(),
        args.output.display(),
        input.width(),
        input.height(),
        match args.emit {
            Emit::Refined => "refined",
            Emit::Base => "base",
            Emit::SideBySide => "degraded | base | refined",
        },
        engine.active_provider().name(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Images of equal height placed left to right.
fn side_by_side(images: &[&RgbImage]) -> Result<RgbImage> {
    let height = images[0].height();
    let width = images.iter().try_fold(0u32, |acc, img| acc.checked_add(img.width()));
    let width = width.ok_or_else(|| Error::invalid("side-by-side image is too wide"))?;
    let mut out = RgbImage::new(width, height);
    let mut x = 0;
    for img in images {
        out.copy_from(*img, x, 0).map_err(|e| Error::invalid(format!("side-by-side: {e}")))?;
        x += img.width();
    }
    Ok(out)
}
