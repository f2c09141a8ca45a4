//! `ptgrm`: restore images, inspect bundles, benchmark and evaluate models from the shell.
//! Each subcommand lives in its own file; this one only parses arguments and maps errors to an
//! exit status (1 for any failure, 2 for a usage error as clap reports it).

mod artefacts;
mod bare_ort;
mod baseline;
mod bench;
mod engine_args;
mod eval;
mod grid_pattern;
mod image_io;
mod info;
mod night;
mod restore;
mod rgb_engine;
mod sensor;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ptgrm", version, about = "Prior-guided image restoration (PTG-RM) on ONNX Runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Restore one PNG/JPEG image with a model bundle.
    Restore(restore::RestoreArgs),
    /// Show a bundle's manifest, parameter counts and the execution provider it runs on.
    Info(info::InfoArgs),
    /// Measure frames per second of the engine and of a bare ONNX Runtime session on the same graphs.
    Bench(bench::BenchArgs),
    /// PSNR and SSIM of the base and refined outputs against clean images.
    Eval(eval::EvalArgs),
    /// Grid score, temporal noise ratio and prior flicker on synthetic night captures (live low-light artefacts).
    Artefacts(artefacts::ArtefactsArgs),
    /// Simulated night captures of a photo (dark exposure, photon and read noise, 8 bits), one
    /// PNG per frame: a noisy dark video source for trying a low-light model.
    Night(night::NightArgs),
}

fn main() -> ExitCode {
    // Like other Unix filters, stop quietly when the reader of our output goes away
    // (`ptgrm eval --json | head`) instead of panicking in println!.
    // SAFETY: resetting a signal disposition to the default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Restore(args) => restore::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Artefacts(args) => artefacts::run(&args),
        Command::Night(args) => night::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ptgrm: error: {e}");
            ExitCode::FAILURE
        }
    }
}
