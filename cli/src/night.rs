//! `ptgrm night`: night captures of a photo from the simulated sensor of `ptgrm artefacts`, one
//! PNG per frame with its own noise, e.g. a video source for `multifilesrc` that looks like a
//! camera in the dark (the README demo uses it).

use crate::image_io::read_rgb8;
use crate::sensor::SensorArgs;
use clap::Args;
use ptgrm::{Error, ErrorKind, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct NightArgs {
    /// Clean photo (PNG/JPEG).
    input: PathBuf,
    /// Directory for the captures, written as 000.png, 001.png, ... (created if missing).
    out_dir: PathBuf,
    /// Number of captures (independent noise each).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    frames: u32,
    /// Seed of the first capture (capture k uses seed + k).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    sensor: SensorArgs,
}

pub fn run(args: &NightArgs) -> Result<()> {
    let sensor = args.sensor.sensor()?;
    let clean = read_rgb8(&args.input)?;
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot create {}: {e}", args.out_dir.display())))?;
    for k in 0..args.frames {
        let path = args.out_dir.join(format!("{k:03}.png"));
        sensor
            .capture(&clean, args.seed + k as u64)
            .save(&path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write {}: {e}", path.display())))?;
    }
    eprintln!("wrote {} captures of {} to {}", args.frames, args.input.display(), args.out_dir.display());
    Ok(())
}
