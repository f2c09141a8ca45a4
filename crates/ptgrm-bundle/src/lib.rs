//! The ptgrm model bundle format, version 1: a directory holding `manifest.json` and the ONNX
//! graphs it names (docs/model-format.md is the prose version).
//!
//! This crate is the only contract between the side that makes models (ptgrm-model, the
//! trainer) and the side that runs them (the `ptgrm` runtime): both read and write bundles
//! through these types, so they cannot disagree on the format. It depends on serde and sha2
//! only; decoding ONNX graphs is not its business, checking that bytes look like one is.

mod manifest;
pub mod onnx_check;

pub use manifest::*;
