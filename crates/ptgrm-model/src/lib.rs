//! PTG-RM model definition, written once against a small op set ([`ops::Ops`]), with an ONNX
//! graph builder backend ([`onnx_builder`]) and the ptgrm bundle format ([`bundle_format`]).
//! The trainer implements `Ops` for burn; the runtime only reads bundles.

pub mod base;
pub mod bundle_format;
pub mod export;
pub mod layers;
pub mod onnx_builder;
pub mod onnx_check;
pub mod onnx_proto;
pub mod ops;
pub mod params;
pub mod ptgrm;
pub mod test_bundle;
pub mod import;
pub mod joint;
