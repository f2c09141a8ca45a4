//! ptgrm: prior-guided image restoration (PTG-RM, CVPR 2024) on ONNX Runtime.
//!
//! Data flows one way: [`bundle`] (manifest + ONNX graphs) -> [`engine`] (sessions, providers,
//! prior schedule) -> [`frame`] I/O (formats, strides, padding, tiles) -> thin front ends in
//! their own packages (the `ptgrm` CLI in cli/, the C library in capi/, the GStreamer element in
//! plugins/). The bundle format itself is the `ptgrm-bundle` crate, shared with the trainer.

pub mod bundle;
pub mod engine;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod frame;
pub mod metrics;
pub mod ortlib;
pub mod prior;
pub mod providers;
pub mod sessions;
pub mod tiling;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use frame::{FrameLayout, FrameMut, FrameRef, InputRange, PixelFormat, YuvColor, YuvMatrix};
pub use providers::{Provider, ProviderRequest};
pub use ptgrm_bundle::Manifest;

/// Library version (also the C ABI's `ptgrm_version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
