//! Execution providers: what the user asked for, the order tried, and session creation on one.
//!
//! ONNX Runtime registers providers silently on failure and a CUDA provider can register and
//! still fail at session creation or at the first run, so the engine verifies a provider by
//! building every session and running a warm-up on it (see engine.rs); this module only builds.

use crate::error::{Error, ErrorKind, Result};
use ort::ep;
use ort::session::{Session, builder::GraphOptimizationLevel};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderRequest {
    /// TensorRT -> CUDA -> CPU, the first that works.
    #[default]
    Auto,
    TensorRt,
    Cuda,
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    TensorRt,
    Cuda,
    Cpu,
}

impl ProviderRequest {
    pub fn name(self) -> &'static str {
        match self {
            ProviderRequest::Auto => "auto",
            ProviderRequest::TensorRt => "tensorrt",
            ProviderRequest::Cuda => "cuda",
            ProviderRequest::Cpu => "cpu",
        }
    }

    /// Providers to try, in order.
    pub fn candidates(self) -> &'static [Provider] {
        match self {
            ProviderRequest::Auto => &[Provider::TensorRt, Provider::Cuda, Provider::Cpu],
            ProviderRequest::TensorRt => &[Provider::TensorRt],
            ProviderRequest::Cuda => &[Provider::Cuda],
            ProviderRequest::Cpu => &[Provider::Cpu],
        }
    }
}

impl std::str::FromStr for ProviderRequest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ProviderRequest::Auto),
            "tensorrt" | "trt" => Ok(ProviderRequest::TensorRt),
            "cuda" => Ok(ProviderRequest::Cuda),
            "cpu" => Ok(ProviderRequest::Cpu),
            _ => Err(Error::invalid(format!("unknown provider {s:?} (expected auto, tensorrt, cuda or cpu)"))),
        }
    }
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::TensorRt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Provider settings taken from the engine options.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    pub device_id: i32,
    pub fp16: bool,
    pub engine_cache_dir: Option<PathBuf>,
    pub threads: usize,
    pub spinning: bool,
}

/// Builds a session for `model` on `provider`. `profile` holds the TensorRT optimization
/// profile (min, opt, max) in ORT's "name:1x3xHxW,..." form, one entry per dynamic input.
pub fn build_session(model: &[u8], provider: Provider, settings: &ProviderSettings, profile: Option<&[String; 3]>) -> Result<Session> {
    let env = crate::ortlib::environment(None)?;
    let fail = |what: &str, e: String| Error::new(ErrorKind::Provider, format!("{}: {what}: {e}", provider.name()));
    let mut builder = Session::builder(env)
        .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3).map_err(Into::into))
        .map_err(|e| fail("session options", e.to_string()))?;
    if settings.threads > 0 {
        builder = builder.with_intra_threads(settings.threads).map_err(|e| fail("intra-op threads", e.to_string()))?;
    }
    builder = builder.with_intra_op_spinning(settings.spinning).map_err(|e| fail("intra-op spinning", e.to_string()))?;
    let dispatch = match provider {
        Provider::Cpu => None,
        Provider::Cuda => Some(
            ep::CUDA::default()
                .with_device_id(settings.device_id)
                // Exhaustive cuDNN search makes the first frame of every new size take seconds.
                .with_conv_algorithm_search(ep::cuda::ConvAlgorithmSearch::Heuristic)
                .build(),
        ),
        Provider::TensorRt => {
            let mut trt =
                ep::TensorRT::default().with_device_id(settings.device_id).with_fp16(settings.fp16).with_layer_norm_fp32_fallback(true);
            if let Some(dir) = &settings.engine_cache_dir {
                std::fs::create_dir_all(dir).map_err(|e| fail("engine cache dir", format!("{}: {e}", dir.display())))?;
                let d = dir.display().to_string();
                trt = trt.with_engine_cache(true).with_engine_cache_path(&d).with_timing_cache(true).with_timing_cache_path(&d);
            }
            if let Some([min, opt, max]) = profile {
                trt = trt.with_profile_min_shapes(min).with_profile_opt_shapes(opt).with_profile_max_shapes(max);
            }
            Some(trt.build())
        }
    };
    if let Some(d) = dispatch {
        builder = builder
            .with_execution_providers([d.error_on_failure()])
            .map_err(|e| fail("registering the execution provider", e.to_string()))?;
    }
    builder.commit_from_memory(model).map_err(|e| {
        let kind = if provider == Provider::Cpu { ErrorKind::Model } else { ErrorKind::Provider };
        Error::new(kind, format!("{}: creating the session: {e}", provider.name()))
    })
}
