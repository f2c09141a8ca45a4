//! ptgrm: prior-guided image restoration (PTG-RM, CVPR 2024) on ONNX Runtime.
//!
//! Data flows one way: [`bundle`] (manifest + ONNX graphs) -> [`engine`] (sessions, providers,
//! prior schedule) -> [`frame`] I/O (formats, strides, padding, tiles) -> thin front ends
//! (the `ptgrm` CLI, the C ABI in [`capi`], the GStreamer element in plugins/).

pub mod bundle;
pub mod capi;
pub mod engine;
pub mod error;
pub mod frame;
pub mod metrics;
pub mod ortlib;
pub mod prior;
pub mod providers;
pub mod tiling;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use frame::{FrameLayout, FrameMut, FrameRef, PixelFormat, YuvColor, YuvMatrix};
pub use ptgrm_model::bundle_format::Manifest;
pub use providers::{Provider, ProviderRequest};

/// Library version (also the C ABI's `ptgrm_version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
