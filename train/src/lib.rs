//! ptgrm trainer library: data, degradations, recipes, the model ops on LibTorch (tch) and burn,
//! the view pool and batch feeder, training loop.
pub mod degrade;
pub mod imagebuf;
pub mod rng;
pub mod data;
pub mod burn_ops;
pub mod backend;
#[cfg(feature = "tch")]
pub mod tch_ops;
#[cfg(feature = "tch")]
pub mod tch_train;
pub mod feed;
pub mod pool;
pub mod recipe;
pub mod adam;
pub mod checkpoint;
pub mod onnx_run;
pub mod model;
pub mod plot;
pub mod run;
pub mod evaluate;
pub mod fit;
pub mod metrics_log;
pub mod export;
pub mod eval;
pub mod bench;
pub mod grid;
