//! Options shared by every subcommand that loads a model, and the value parsers clap uses.

use clap::Args;
use ptgrm::{Engine, EngineOptions, Error, ProviderRequest, Result};
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Execution provider: auto (TensorRT -> CUDA -> CPU), tensorrt, cuda or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_provider)]
    pub provider: ProviderRequest,
    /// CPU intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Process frames with a side longer than this in overlapping tiles (0 = never tile;
    /// default: the engine's).
    #[arg(long)]
    pub tile_size: Option<usize>,
    /// Switch to each new prior at once instead of gliding to it over the prior interval
    /// (video commands; see docs/element.md, prior-glide).
    #[arg(long)]
    pub no_prior_glide: bool,
    /// Idle ONNX Runtime threads busy-wait for work instead of sleeping (ONNX Runtime's own
    /// default; off in ptgrm, where it takes cores from the rest of a video pipeline).
    #[arg(long)]
    pub spinning: bool,
}

impl EngineArgs {
    pub fn options(&self) -> EngineOptions {
        let defaults = EngineOptions::default();
        EngineOptions {
            provider: self.provider,
            threads: self.threads,
            tile_size: self.tile_size.unwrap_or(defaults.tile_size),
            prior_glide: !self.no_prior_glide,
            spinning: self.spinning,
            ..defaults
        }
    }
}

/// The bundle directory to use: the one given, else the installed default.
pub fn model_dir(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir.to_path_buf()),
        None => ptgrm::bundle::default_model_dir()
            .ok_or_else(|| Error::invalid("no --model given and no default model found (set PTGRM_MODEL or install models/lowlight)")),
    }
}

pub fn load_engine(dir: &Path, options: &EngineOptions) -> Result<Engine> {
    Engine::load(dir, options).map_err(|e| Error::new(e.kind, format!("cannot load model {}: {e}", dir.display())))
}

fn parse_provider(text: &str) -> std::result::Result<ProviderRequest, String> {
    text.parse::<ProviderRequest>().map_err(|_| format!("unknown provider {text:?} (expected auto, tensorrt, cuda or cpu)"))
}

/// A blend strength in 0..=1.
pub fn parse_strength(text: &str) -> std::result::Result<f32, String> {
    let s: f32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&s) { Ok(s) } else { Err(format!("strength {text} is outside 0..1")) }
}

/// A frame size written WxH, e.g. 1280x720.
pub fn parse_size(text: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("{text:?} is not a size like 640x360");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?);
    if w == 0 || h == 0 {
        return Err(format!("size {w}x{h} is empty"));
    }
    Ok((w, h))
}
