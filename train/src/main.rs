//! `train`: fits PTG-RM (with a built-in or external base F) from a recipe, evaluates runs and
//! exports ptgrm bundles. See docs/training.md.

use clap::{Parser, Subcommand};
use ptgrm_train::backend::Backend;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "train", version, about = "Train PTG-RM models and export ptgrm bundles")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where and how the training step runs (`fit` and `bench` alike, so a bench times what fit does).
#[derive(clap::Args)]
struct TrainerArgs {
    /// Training backend: tch (LibTorch on CPU, default), tch-cuda (LibTorch on CUDA device 0) or
    /// flex (burn). Checkpoints work with all three.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Producer threads preparing batches (view pool, prior G, frozen F) in parallel: 1 suits
    /// the CPU trainer; tch-cuda steps faster than one can feed. Batches, and so the run, are
    /// the same for any value.
    #[arg(long, value_name = "N", default_value_t = 1)]
    feed_threads: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train from a recipe into a run directory (or continue one with --resume).
    Fit {
        #[arg(long)]
        recipe: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps in this session (checkpointed; resume later).
        #[arg(long)]
        stop_after: Option<u64>,
        /// With --resume: lengthen the schedule by N steps (cosine stretched over the new total).
        #[arg(long, value_name = "N")]
        extend_steps: Option<u64>,
        #[command(flatten)]
        trainer: TrainerArgs,
        /// Only errors and the final summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Copy a run's latest checkpoint, recipe and curve to a directory (e.g. checkpoints/NAME)
    /// that can be committed and resumed elsewhere with `train fit --out DIR --resume`.
    Snapshot {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a ptgrm bundle from a run's checkpoint.
    Export {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Ship this graph as the frozen F instead of the recipe's: the same network at one
        /// fixed noise level when the run trained with the level as an input (ptgrm-model
        /// import-ffdnet --sigma input); checked to hold the same weights.
        #[arg(long)]
        base: Option<PathBuf>,
    },
    /// Score a run's checkpoint on its validation images (base vs refined PSNR/SSIM).
    Eval {
        #[arg(long)]
        run: PathBuf,
        /// Whole validation images instead of the recipe's centre crops.
        #[arg(long)]
        full: bool,
        /// Centre-crop side instead of the recipe's `val_crop`.
        #[arg(long, conflicts_with = "full")]
        crop: Option<usize>,
        /// Score these clean photo folders instead of the recipe's validation (repeatable;
        /// degraded as the recipe's validation is), e.g. the photos data.hold_out kept out.
        #[arg(long = "val", value_name = "DIR")]
        val: Vec<PathBuf>,
        /// Also write input/base/refined/clean PNGs here.
        #[arg(long)]
        save_images: Option<PathBuf>,
    },
    /// Time training steps of a recipe as `fit` runs them; the last line is `steps/s X`.
    Bench {
        #[arg(long)]
        recipe: PathBuf,
        #[arg(long, default_value_t = 20)]
        steps: u64,
        /// Uncounted steps first (default: enough to fill the view pool, at least 3).
        #[arg(long)]
        warmup: Option<u64>,
        #[command(flatten)]
        trainer: TrainerArgs,
        /// Override the recipe's data.view_reuse.
        #[arg(long)]
        view_reuse: Option<usize>,
        /// Override the recipe's batch size.
        #[arg(long)]
        batch: Option<usize>,
        /// Override the recipe's crop size.
        #[arg(long)]
        crop: Option<usize>,
    },
    /// Lay the same window of several images out as a grid PNG (before/after figures).
    Grid {
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// One row: comma-separated image files, left to right (repeat for more rows).
        #[arg(long = "row", required = true)]
        rows: Vec<String>,
        /// Side of the square window cut from every image.
        #[arg(long, default_value_t = 192)]
        crop: usize,
        /// Window centre as fractions of width and height, "FX,FY".
        #[arg(long, default_value = "0.5,0.5")]
        centre: String,
    },
}

fn grid(out: &std::path::Path, rows: &[String], crop: usize, centre: &str) -> anyhow::Result<()> {
    let centre = match centre.split_once(',').map(|(x, y)| (x.trim().parse::<f64>(), y.trim().parse::<f64>())) {
        Some((Ok(x), Ok(y))) if (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y) => (x, y),
        _ => anyhow::bail!("--centre {centre:?}: expected two fractions in [0, 1] such as 0.5,0.5"),
    };
    let rows: Vec<Vec<PathBuf>> = rows.iter().map(|r| r.split(',').map(PathBuf::from).collect()).collect();
    ptgrm_train::grid::grid(&ptgrm_train::grid::GridOptions { rows: &rows, crop, centre, out })
}

fn backend_named(name: Option<&str>) -> anyhow::Result<Backend> {
    name.map(Backend::parse).unwrap_or(Ok(Backend::default_for_build()))
}

fn main() -> ExitCode {
    // Like other Unix filters, stop quietly when the reader of our output goes away
    // (`train eval --run R | head`) instead of panicking in println!.
    // SAFETY: resetting a signal disposition to the default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Fit { recipe, out, resume, stop_after, extend_steps, trainer: TrainerArgs { backend, feed_threads }, quiet } => {
            backend_named(backend.as_deref()).and_then(|backend| {
                ptgrm_train::fit::fit(&ptgrm_train::fit::FitOptions {
                    recipe: recipe.as_deref(),
                    out: &out,
                    resume,
                    stop_after,
                    extend_steps,
                    backend,
                    feed_threads,
                    quiet,
                })
            })
        }
        Cmd::Snapshot { run, out } => ptgrm_train::run::snapshot(&run, &out).map(|bytes| {
            println!(
                "snapshot of {} in {} ({:.1} MB); resume with: train fit --out {} --resume",
                run.display(),
                out.display(),
                bytes as f64 / 1e6,
                out.display()
            );
        }),
        Cmd::Export { run, out, base } => {
            ptgrm_train::export::export_with(&run, &out, &ptgrm_train::export::ExportOptions { base }).map(|m| {
                let n: u64 = m.graphs.iter().map(|(_, g)| g.parameters).sum();
                println!("wrote bundle {} ({} {}, {} trained parameters, step {})", out.display(), m.name, m.task, n, m.provenance.steps);
            })
        }
        Cmd::Eval { run, full, crop, val, save_images } => ptgrm_train::eval::eval(&run, full, crop, &val, save_images.as_deref()),
        Cmd::Bench { recipe, steps, warmup, trainer: TrainerArgs { backend, feed_threads }, view_reuse, batch, crop } => {
            backend_named(backend.as_deref()).and_then(|backend| {
                ptgrm_train::bench::bench(&ptgrm_train::bench::BenchOptions {
                    recipe: &recipe,
                    steps,
                    warmup,
                    batch,
                    crop,
                    view_reuse,
                    backend,
                    feed_threads,
                })
            })
        }
        Cmd::Grid { out, rows, crop, centre } => grid(&out, &rows, crop, &centre),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
