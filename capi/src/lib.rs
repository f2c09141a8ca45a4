//! libptgrm: the C ABI of the ptgrm runtime (header: include/ptgrm.h, generated from these
//! files by cbindgen; see tests/header.rs). A thin front end: every call converts C arguments,
//! calls the `ptgrm` crate and converts the result back.
//!
//! Rules every entry point follows:
//! - no panic crosses the boundary: bodies run under `catch_unwind` ([`status::guard`]);
//! - every pointer is checked for NULL and every size/stride/format validated *before* a Rust
//!   slice is formed from caller memory, so bad arguments give a status, never undefined behaviour;
//! - values C passes in (formats, providers, flags) are plain integers, checked on the way in,
//!   because an out-of-range Rust enum read from C memory would be undefined behaviour;
//! - each call returning a `ptgrm_status` sets the calling thread's last-error message.
#![allow(non_camel_case_types)]

pub mod engine;
pub mod image;
pub mod options;
pub mod status;

pub use engine::ptgrm_engine;
pub use image::{ptgrm_image, ptgrm_pixel_format, ptgrm_yuv_color};
pub use options::{ptgrm_options, ptgrm_provider};
pub use status::ptgrm_status;

#[cfg(test)]
mod tests;
