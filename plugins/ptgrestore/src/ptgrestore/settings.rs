//! The element's property values and how they become engine options.
//!
//! Two groups: values read when sessions are created (READY->PAUSED; while running, the element
//! refuses changes to them, except `model`, which it swaps in a new engine for) and values pushed
//! into the running engine before each frame (strength, prior-interval, prior-smoothing,
//! prior-glide).

use gst::glib;
use ptgrm::{EngineOptions, ProviderRequest};
use std::path::PathBuf;

/// The `provider` property: which ONNX Runtime execution provider runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPtgRestoreProvider")]
pub enum ProviderChoice {
    #[default]
    #[enum_value(name = "Auto: TensorRT, then CUDA, then CPU (first that works)", nick = "auto")]
    Auto = 0,
    #[enum_value(name = "TensorRT (error if unavailable)", nick = "tensorrt")]
    TensorRt = 1,
    #[enum_value(name = "CUDA (error if unavailable)", nick = "cuda")]
    Cuda = 2,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 3,
}

impl From<ProviderChoice> for ProviderRequest {
    fn from(p: ProviderChoice) -> Self {
        match p {
            ProviderChoice::Auto => ProviderRequest::Auto,
            ProviderChoice::TensorRt => ProviderRequest::TensorRt,
            ProviderChoice::Cuda => ProviderRequest::Cuda,
            ProviderChoice::Cpu => ProviderRequest::Cpu,
        }
    }
}

// Defaults follow the engine's own (EngineOptions::default()) so the element and the CLI agree,
// except the prior interval, which is the engine's video default (see VIDEO_PRIOR_INTERVAL).
pub const DEFAULT_STRENGTH: f64 = 1.0;
pub const DEFAULT_PRIOR_INTERVAL: u32 = ptgrm::engine::VIDEO_PRIOR_INTERVAL;
pub const DEFAULT_PRIOR_SMOOTHING: f64 = 0.0;
pub const DEFAULT_PRIOR_GLIDE: bool = true;
/// The engine keeps a weight in [0, 1) of the previous prior (1 would freeze it forever).
pub const MAX_PRIOR_SMOOTHING: f64 = 0.99;
/// The engine's per-side frame limit.
pub const MAX_SIDE: u32 = 1 << 15;

pub fn default_tile_size() -> u32 {
    EngineOptions::default().tile_size as u32
}

pub fn default_max_resolution() -> (u32, u32) {
    let (w, h) = EngineOptions::default().max_resolution;
    (w as u32, h as u32)
}

/// Values the streaming thread pushes into a running engine when they change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSettings {
    pub strength: f64,
    pub prior_interval: u32,
    pub prior_smoothing: f64,
    pub prior_glide: bool,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            strength: DEFAULT_STRENGTH,
            prior_interval: DEFAULT_PRIOR_INTERVAL,
            prior_smoothing: DEFAULT_PRIOR_SMOOTHING,
            prior_glide: DEFAULT_PRIOR_GLIDE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub ort_library: Option<PathBuf>,
    pub provider: ProviderChoice,
    pub device_id: i32,
    pub fp16: bool,
    pub engine_cache_dir: Option<PathBuf>,
    pub threads: u32,
    pub spinning: bool,
    pub tile_size: u32,
    pub max_width: u32,
    pub max_height: u32,
    pub live: LiveSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ptgrm::bundle::default_model_dir(),
            ort_library: None,
            provider: ProviderChoice::Auto,
            device_id: 0,
            fp16: false,
            engine_cache_dir: None,
            threads: 0,
            spinning: EngineOptions::default().spinning,
            tile_size: default_tile_size(),
            max_width: default_max_resolution().0,
            max_height: default_max_resolution().1,
            live: LiveSettings::default(),
        }
    }
}

impl Settings {
    /// Values out of the engine's ranges (tile-size) are left for Engine::load to reject with a
    /// reason; the property ranges already bound everything else.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            ort_library: self.ort_library.clone(),
            provider: self.provider.into(),
            device_id: self.device_id,
            fp16: self.fp16,
            engine_cache_dir: self.engine_cache_dir.clone(),
            threads: self.threads as usize,
            spinning: self.spinning,
            max_resolution: (self.max_width as usize, self.max_height as usize),
            tile_size: self.tile_size as usize,
            prior_interval: self.live.prior_interval,
            prior_smoothing: self.live.prior_smoothing as f32,
            prior_glide: self.live.prior_glide,
            strength: self.live.strength as f32,
            ..EngineOptions::default()
        }
    }
}
