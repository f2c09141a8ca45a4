//! PTG-RM model definition, written once against a small op set ([`ops::Ops`]), with an ONNX
//! graph builder backend ([`onnx_builder`]), the importers of third-party weights ([`import`])
//! and bundle writers. Bundles go through the `ptgrm-bundle` format crate; the trainer
//! implements `Ops` for LibTorch and burn; the runtime does not depend on this crate.

pub mod base;
pub mod export;
pub mod import;
pub mod joint;
pub mod layers;
pub mod onnx_builder;
pub mod onnx_proto;
pub mod ops;
pub mod params;
pub mod ptgrm;
pub mod test_bundle;
