//! ptgrm trainer library: data, degradations, recipes, the model ops on LibTorch (tch) and burn,
//! the view pool and batch feeder, training loop.
pub mod adam;
pub mod backend;
pub mod bench;
pub mod burn_ops;
pub mod checkpoint;
pub mod data;
pub mod degrade;
pub mod eval;
pub mod evaluate;
pub mod export;
pub mod feed;
pub mod fit;
pub mod grid;
pub mod imagebuf;
pub mod metrics_log;
pub mod model;
pub mod onnx_run;
pub mod plot;
pub mod pool;
pub mod recipe;
pub mod rng;
pub mod run;
#[cfg(feature = "tch")]
pub mod tch_ops;
#[cfg(feature = "tch")]
pub mod tch_train;
